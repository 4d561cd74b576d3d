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
#include "pins.h"
#include "previous_maps.h"

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
  uint32_t drain_batch() const { return drain_batch_; }
  // Test-only fault injection: the drain fails its nth call at a site
  // ("flows", "iface-lookup", "iface-reset") with EIO. Touched by the worker.
  struct Fault {
    std::string site;
    uint32_t nth = 0;    // 0 = off
    uint32_t calls = 0;
  };
  Fault& fault() { return fault_; }
  // An earlier version's flow maps, set aside at start (previous_maps.h).
  PreviousFlowMaps& previous_flow_maps() { return previous_maps_; }
  // Adopted attachments still running the program they had (not swapped for
  // ours), and pinned ones that could not be taken over and may still run it:
  // while there are any, an earlier version's set-aside maps stay pinned.
  int earlier_programs_attached() const { return earlier_programs_.load(); }

 private:
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value RemoveStale(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Adopted(const Napi::CallbackInfo& info);
  Napi::Value ForgetIface(const Napi::CallbackInfo& info);
  Napi::Value IfaceStatsIfindexes(const Napi::CallbackInfo& info);
  Napi::Value SetLocalAddresses(const Napi::CallbackInfo& info);
  Napi::Value PinnedState(const Napi::CallbackInfo& info);
  Napi::Value SetOwnerApi(const Napi::CallbackInfo& info);
  Napi::Value MarkExported(const Napi::CallbackInfo& info);
  Napi::Value InjectDrainFault(const Napi::CallbackInfo& info);

  void EnsureOpen(Napi::Env env) const;
  void PrecreateIfaceEntries(Napi::Env env, int ifindex);
  void PreparePins(Napi::Env env, const std::string& dir);
  void AdoptPinned();
  const bpf_program* ProgramFor(Hook hook) const;
  SysError PinAttachment(const Attachment& a);
  void UnpinAttachment(const Attachment& a, bool last_on_iface);
  void DetachAll();
  void ReleaseAll();

  flowscope_bpf* skel_ = nullptr;
  int ncpus_ = 0;
  uint32_t flow_map_entries_ = 0;
  // Attachments by handle id, as returned to JS.
  std::map<uint32_t, std::unique_ptr<Attachment>> attachments_;
  uint32_t next_handle_ = 1;
  // Pinned state (pins.h); not open when the datapath is not pinned (tests, benchmarks).
  PinDir pins_;
  // What the pinned state held when this datapath took it over.
  struct Resumed {
    bool adopted = false;
    uint64_t drained_until_realtime_ns = 0;
    uint64_t drained_until_mono_ns = 0;
    uint64_t drain_seq = 0;
    uint64_t exported_seq = 0;
  } resumed_;
  // Attachments taken over from the pinned state: handle -> program replaced?
  std::map<uint32_t, bool> adopted_;
  std::vector<std::string> adopt_problems_;
  PreviousFlowMaps previous_maps_;
  std::atomic<int> earlier_programs_{0};
  uint32_t drain_batch_ = 8192;
  Fault fault_;
  // A drain or test run is running on the thread pool.
  std::atomic<bool> busy_{false};
};

}  // namespace flowscope
