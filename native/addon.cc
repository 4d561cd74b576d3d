// flowscope.node: the native side of the datapath. See datapath.h.
#include <napi.h>

#include "datapath.h"
#include "uninstall.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("removePinned", Napi::Function::New<flowscope::RemovePinned>(env, "removePinned"));
  exports.Set("removeOrphanClsact", Napi::Function::New<flowscope::RemoveOrphanClsactJs>(env, "removeOrphanClsact"));
  return flowscope::Datapath::Init(env, exports);
}

NODE_API_MODULE(flowscope, InitAddon)
