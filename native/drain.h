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

class DrainWorker : public Napi::AsyncWorker {
 public:
  // `target` receives the flows: capacity keys, then capacity summed values.
  DrainWorker(Napi::Env env, Datapath* dp, Napi::ArrayBuffer target);
  ~DrainWorker() override;
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  bool FlipAndWait(uint32_t* closed_gen);
  bool DrainFlows(uint32_t gen);
  void DrainPreviousFlows(uint32_t gen);
  bool DrainFlowMap(int fd, size_t value_size, uint32_t gen, const char* call);
  bool DrainIfaces(uint32_t gen);
  iface_totals& TotalsFor(uint32_t ifindex, uint8_t direction, uint8_t gen);
  bool ReadFailures();
  void Fail(int negative_err, const char* call);
  // A failure after the flip: what was taken so far is kept and returned.
  void FailPartly(int negative_err, const char* call);
  // Test-only: whether this call at `site` is the one to fail (Datapath::Fault).
  bool Faulty(const char* site);

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;  // keeps the Datapath alive while we run
  Datapath* dp_;
  SysError err_;
  SysError partial_err_;  // first failure after the flip (the result is partial)
  uint64_t drain_seq_ = 0;

  // The caller's buffer for the drained flows, struct-of-arrays: capacity
  // keys (written by the syscall itself), then capacity summed values. JS
  // owns it and reuses it across drains, so its pages stay resident; it does
  // not touch it until the promise settles.
  Napi::Reference<Napi::ArrayBuffer> target_;
  uint8_t* target_data_;
  size_t target_length_;
  size_t flow_count_ = 0;
  size_t flow_capacity_ = 0;
  size_t previous_flows_ = 0;  // of flow_count_, from an earlier version's set-aside maps
  std::vector<iface_record> ifaces_;
  size_t last_totals_ = 0;  // index of the last TotalsFor hit
  uint64_t failures_[FAIL_KIND_COUNT] = {};
  uint64_t closed_realtime_ns_ = 0;
  uint64_t closed_mono_ns_ = 0;
  uint64_t barrier_ns_ = 0;
  uint64_t duration_ns_ = 0;
};

}  // namespace flowscope
