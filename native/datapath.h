// Datapath: one loaded copy of bpf/flowscope.bpf.c (programs + maps), the
// interfaces it is attached to, and the generation it counts into.
#pragma once
#include <napi.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "attach.h"

struct flowscope_bpf;

namespace flowscope {

class Datapath : public Napi::ObjectWrap<Datapath> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports);
  explicit Datapath(const Napi::CallbackInfo& info);
  ~Datapath() override;

  // Used by the workers (drain.cc, test_run.cc).
  flowscope_bpf* skel() const { return skel_; }
  int ncpus() const { return ncpus_; }
  std::atomic<bool>& busy() { return busy_; }

 private:
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value RemoveStale(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void EnsureOpen(Napi::Env env) const;
  void PrecreateIfaceEntries(Napi::Env env, int ifindex);
  void DetachAll();

  flowscope_bpf* skel_ = nullptr;
  int ncpus_ = 0;
  uint32_t flow_map_entries_ = 0;
  // Attachments by handle id, as returned to JS.
  std::map<uint32_t, std::unique_ptr<Attachment>> attachments_;
  uint32_t next_handle_ = 1;
  // Interfaces whose clsact qdisc was left by a dead flowscope (RemoveStale
  // removed its filters): the next clsact attachment there owns the qdisc.
  std::set<int> adopted_clsact_;
  // A drain or test run is running on the thread pool.
  std::atomic<bool> busy_{false};
};

}  // namespace flowscope
