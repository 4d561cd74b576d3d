#include "drain.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>

#include "datapath.h"
#include "flowscope.skel.h"

/*
 * Lossless drain
 * ==============
 * The programs count into generation G = active_gen (read once per frame) and
 * user space drains generation G ^ 1. A drain:
 *
 *  1. stores active_gen = G ^ 1 (a plain store into the mmap'ed .bss);
 *  2. rewrites slot G of flow_gens with the same map. For map-in-map types the
 *     kernel's update path ends in synchronize_rcu() (maybe_wait_bpf_programs
 *     in kernel/bpf/syscall.c) so that "userspace, when we return to it, knows
 *     that all non-sleepable programs that could be running use the new map
 *     value". TC and XDP programs run inside RCU read-side critical sections,
 *     so when the update returns, every program that started before step 1
 *     has finished, and, by RCU's guarantee, every program that starts after
 *     the grace period began sees the store of step 1;
 *  3. so nothing writes generation G any more: its flow map is emptied with
 *     lookup_and_delete_batch and its iface_stats entries are read and zeroed,
 *     with no update racing the read-then-delete.
 *
 * Every frame is counted in exactly one generation (gen is read once), and a
 * generation is drained only when no program can still write it, so every
 * count reaches user space exactly once. Per generation, the interface totals
 * equal the flows plus other_* plus overflow_* (flowscope.h), so each drain is
 * self-consistent, not just the running sums.
 */

namespace flowscope {

static uint64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

DrainWorker::DrainWorker(Napi::Env env, Datapath* dp)
    : Napi::AsyncWorker(env, "flowscope.drain"),
      deferred_(Napi::Promise::Deferred::New(env)),
      owner_(Napi::Persistent(dp->Value())),
      dp_(dp) {}

DrainWorker::~DrainWorker() { free(flows_); }

void DrainWorker::Fail(int negative_err, const char* call) {
  err_.err = negative_err < 0 ? -negative_err : negative_err;
  err_.call = call;
  err_.context = "the flow maps";
  SetError(call);
}

bool DrainWorker::FlipAndWait(uint32_t* closed_gen) {
  flowscope_bpf* skel = dp_->skel();
  uint32_t gen = __atomic_load_n(&skel->bss->active_gen, __ATOMIC_ACQUIRE) & 1;
  __atomic_store_n(&skel->bss->active_gen, gen ^ 1, __ATOMIC_SEQ_CST);

  uint64_t t0 = NowNs(CLOCK_MONOTONIC);
  int outer = bpf_map__fd(skel->maps.flow_gens);
  int inner = bpf_map__fd(gen ? skel->maps.flows_gen1 : skel->maps.flows_gen0);
  int err = bpf_map_update_elem(outer, &gen, &inner, BPF_ANY);
  if (err) {
    // Without the wait nothing may be read: leave the counts where they are
    // (the next drain flips back and finds them).
    Fail(err, "bpf_map_update_elem(flow_gens) [generation barrier]");
    return false;
  }
  closed_mono_ns_ = NowNs(CLOCK_MONOTONIC);
  closed_realtime_ns_ = NowNs(CLOCK_REALTIME);
  barrier_ns_ = closed_mono_ns_ - t0;
  *closed_gen = gen;
  return true;
}

bool DrainWorker::DrainFlows(uint32_t gen) {
  flowscope_bpf* skel = dp_->skel();
  const bpf_map* map = gen ? skel->maps.flows_gen1 : skel->maps.flows_gen0;
  int fd = bpf_map__fd(map);
  const int ncpus = dp_->ncpus();
  const size_t capacity = bpf_map__max_entries(map);
  // Per-CPU values come rounded up to 8 bytes each, CPU after CPU.
  const size_t cpu_stride = (sizeof(flow_value) + 7) & ~size_t(7);
  const size_t value_stride = cpu_stride * ncpus;

  uint32_t batch = static_cast<uint32_t>(std::min<size_t>(capacity, 8192));
  std::vector<flow_key> keys(batch);
  std::vector<uint8_t> values(batch * value_stride);

  flows_ = static_cast<flow_record*>(malloc(std::max<size_t>(capacity, 1) * sizeof(flow_record)));
  if (!flows_) {
    Fail(-ENOMEM, "malloc(flow records)");
    return false;
  }

  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  uint64_t in_token = 0, out_token = 0;
  bool first = true;
  for (;;) {
    uint32_t count = batch;
    int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &in_token, &out_token, keys.data(),
                                              values.data(), &count, &opts);
    if (err && err != -ENOENT) {
      if (err == -ENOSPC && count == 0) {
        // One hash bucket holds more entries than the batch: grow and retry.
        batch *= 2;
        keys.resize(batch);
        values.resize(batch * value_stride);
        continue;
      }
      Fail(err, "bpf_map_lookup_and_delete_batch(flows)");
      return false;
    }
    for (uint32_t i = 0; i < count && flow_count_ < capacity; i++) {
      const uint8_t* v = values.data() + i * value_stride;
      flow_value sum;
      memset(&sum, 0, sizeof(sum));
      for (int c = 0; c < ncpus; c++) {
        const flow_value* pc = reinterpret_cast<const flow_value*>(v + c * cpu_stride);
        if (!pc->packets) continue;
        sum.packets += pc->packets;
        sum.bytes += pc->bytes;
        if (!sum.first_seen_ns || (pc->first_seen_ns && pc->first_seen_ns < sum.first_seen_ns))
          sum.first_seen_ns = pc->first_seen_ns;
        if (pc->last_seen_ns > sum.last_seen_ns) sum.last_seen_ns = pc->last_seen_ns;
        sum.tcp_flags |= pc->tcp_flags;
      }
      if (!sum.packets) continue;
      flow_record* r = flows_ + flow_count_++;
      r->key = keys[i];
      r->value = sum;
    }
    if (err == -ENOENT) break;
    in_token = out_token;
    first = false;
  }
  return true;
}

bool DrainWorker::DrainIfaces(uint32_t gen) {
  int fd = bpf_map__fd(dp_->skel()->maps.iface_stats);
  const int ncpus = dp_->ncpus();
  std::vector<iface_value> per_cpu(ncpus);
  std::vector<iface_value> zero(ncpus);
  memset(zero.data(), 0, zero.size() * sizeof(iface_value));

  iface_key key, next;
  iface_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    if (key.gen != gen) continue;
    int err = bpf_map_lookup_elem(fd, &key, per_cpu.data());
    if (err == -ENOENT) continue;
    if (err) {
      Fail(err, "bpf_map_lookup_elem(iface_stats)");
      return false;
    }
    iface_record r;
    memset(&r, 0, sizeof(r));
    r.key = key;
    for (const iface_value& v : per_cpu) {
      r.value.packets += v.packets;
      r.value.bytes += v.bytes;
      r.value.other_packets += v.other_packets;
      r.value.other_bytes += v.other_bytes;
      r.value.overflow_packets += v.overflow_packets;
      r.value.overflow_bytes += v.overflow_bytes;
    }
    if (!r.value.packets) continue;
    err = bpf_map_update_elem(fd, &key, zero.data(), BPF_EXIST);
    if (err) {
      Fail(err, "bpf_map_update_elem(iface_stats) [reset]");
      return false;
    }
    ifaces_.push_back(r);
  }
  return true;
}

bool DrainWorker::ReadFailures() {
  int fd = bpf_map__fd(dp_->skel()->maps.failures);
  std::vector<uint64_t> per_cpu(dp_->ncpus());
  for (uint32_t k = 0; k < FAIL_KIND_COUNT; k++) {
    int err = bpf_map_lookup_elem(fd, &k, per_cpu.data());
    if (err) {
      Fail(err, "bpf_map_lookup_elem(failures)");
      return false;
    }
    for (uint64_t v : per_cpu) failures_[k] += v;
  }
  return true;
}

void DrainWorker::Execute() {
  uint64_t start = NowNs(CLOCK_MONOTONIC);
  uint32_t gen;
  if (!FlipAndWait(&gen)) return;
  if (!DrainFlows(gen)) return;
  if (!DrainIfaces(gen)) return;
  if (!ReadFailures()) return;
  duration_ns_ = NowNs(CLOCK_MONOTONIC) - start;
}

void DrainWorker::OnOK() {
  dp_->busy().store(false);
  Napi::Env env = Env();
  Napi::Object result = Napi::Object::New(env);

  flow_record* records = flows_;
  flows_ = nullptr;
  size_t bytes = flow_count_ * sizeof(flow_record);
  Napi::Buffer<uint8_t> flows = records
      ? Napi::Buffer<uint8_t>::New(env, reinterpret_cast<uint8_t*>(records), bytes,
                                   [](Napi::Env, uint8_t* data) { free(data); })
      : Napi::Buffer<uint8_t>::New(env, 0);
  result.Set("flows", flows);
  result.Set("flowCount", Napi::Number::New(env, static_cast<double>(flow_count_)));
  result.Set("ifaces", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(ifaces_.data()),
                                                   ifaces_.size() * sizeof(iface_record)));
  result.Set("ifaceCount", Napi::Number::New(env, static_cast<double>(ifaces_.size())));
  Napi::Array failures = Napi::Array::New(env, FAIL_KIND_COUNT);
  for (uint32_t k = 0; k < FAIL_KIND_COUNT; k++) failures.Set(k, Napi::Number::New(env, static_cast<double>(failures_[k])));
  result.Set("failures", failures);
  result.Set("closedRealtimeNs", Napi::Number::New(env, static_cast<double>(closed_realtime_ns_)));
  result.Set("closedMonoNs", Napi::Number::New(env, static_cast<double>(closed_mono_ns_)));
  result.Set("barrierNs", Napi::Number::New(env, static_cast<double>(barrier_ns_)));
  result.Set("durationNs", Napi::Number::New(env, static_cast<double>(duration_ns_)));
  deferred_.Resolve(result);
}

void DrainWorker::OnError(const Napi::Error&) {
  dp_->busy().store(false);
  deferred_.Reject(ToJsError(Env(), err_).Value());
}

}  // namespace flowscope
