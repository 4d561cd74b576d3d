#include "uninstall.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "attach.h"
#include "errors.h"
#include "pins.h"

namespace flowscope {

Napi::Value RemovePinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  PinDir pins;
  SysError e = pins.Open(dir);
  if (e.failed()) {
    if (e.err == EWOULDBLOCK) {
      std::string owner = DescribePinnedOwner(dir);
      Napi::Error error = Napi::Error::New(env, "a running flowscope agent" + (owner.empty() ? std::string() : " (" + owner + ")") +
                                                    " owns " + dir + "; stop it first");
      error.Set("code", Napi::String::New(env, "EOWNED"));
      throw error;
    }
    throw ToJsError(env, e);
  }
  uint32_t links = 0, filters = 0;
  std::vector<PinnedAttachment> found = pins.List();
  std::map<int, int> filters_left;  // ifindex -> flowscope filters not yet removed
  for (const PinnedAttachment& p : found)
    if (!p.is_link) filters_left[p.ifindex]++;
  for (const PinnedAttachment& p : found) {
    if (p.is_link) {
      // The pin is the link's last reference once no agent runs: unlinking it detaches.
      PinDir::Unpin(pins.LinkPath(p.hook, p.ifindex));
      links++;
      continue;
    }
    std::string path = pins.FilterPath(p.hook, p.ifindex);
    int prog = bpf_obj_get(path.c_str());
    if (prog >= 0) {
      Attachment a;
      a.ifindex = p.ifindex;
      a.hook = p.hook;
      a.mechanism = Mechanism::Clsact;
      a.prog_id = ProgIdOf(prog);
      // The qdisc flowscope created goes with the last of its filters there (if no other tool's is on it).
      a.created_clsact = p.created_qdisc && --filters_left[p.ifindex] == 0;
      e = DetachProgram(&a);
      close(prog);
      if (e.failed()) throw ToJsError(env, e);
      filters++;
    }
    PinDir::Unpin(path);
  }
  e = pins.RemoveAll();
  if (e.failed()) throw ToJsError(env, e);
  Napi::Object out = Napi::Object::New(env);
  out.Set("links", links);
  out.Set("filters", filters);
  return out;
}

Napi::Value RemoveOrphanClsactJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  SysError e;
  int removed = RemoveOrphanClsact(ifindex, &e);
  if (e.failed()) throw ToJsError(env, e);
  return Napi::Number::New(env, removed);
}

}  // namespace flowscope
