// Drains one generation of counters off the JS thread: flips the programs to
// the other generation, waits for the ones still running, then empties the
// flow map and the interface counters of the closed generation.
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "errors.h"
#include "flowscope.h"

namespace flowscope {

class Datapath;

// An anonymous mapping (huge pages where the kernel gives them) that holds a
// drain's flows. Freed by the ArrayBuffer's finalizer, or by the worker if it
// never reached JS.
struct FlowRegion {
  void* base = nullptr;
  size_t length = 0;
  size_t capacity = 0;  // flows
  flow_key* keys() const { return static_cast<flow_key*>(base); }
  flow_value* values() const {
    return reinterpret_cast<flow_value*>(static_cast<char*>(base) + capacity * sizeof(flow_key));
  }
  static FlowRegion* Create(size_t capacity);
  static void Destroy(FlowRegion* r);
};

class DrainWorker : public Napi::AsyncWorker {
 public:
  DrainWorker(Napi::Env env, Datapath* dp);
  ~DrainWorker() override;
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  bool FlipAndWait(uint32_t* closed_gen);
  bool DrainFlows(uint32_t gen);
  bool DrainIfaces(uint32_t gen);
  iface_totals& TotalsFor(uint32_t ifindex, uint8_t direction, uint8_t gen);
  bool ReadFailures();
  void Fail(int negative_err, const char* call);

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;  // keeps the Datapath alive while we run
  Datapath* dp_;
  SysError err_;

  // The drained flows, struct-of-arrays in one mapping handed to JS as an
  // external ArrayBuffer: capacity keys (written by the syscall itself), then
  // capacity summed values.
  FlowRegion* region_ = nullptr;
  size_t flow_count_ = 0;
  std::vector<iface_record> ifaces_;
  uint64_t failures_[FAIL_KIND_COUNT] = {};
  uint64_t closed_realtime_ns_ = 0;
  uint64_t closed_mono_ns_ = 0;
  uint64_t barrier_ns_ = 0;
  uint64_t duration_ns_ = 0;
};

}  // namespace flowscope
