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
#include "previous_maps.h"

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
 * count reaches user space exactly once. A frame is in one flow entry or in
 * its interface's other or overflow counters (flowscope.h); the totals of a
 * drain are built here from those same entries, so each drain is
 * self-consistent, not just the running sums.
 */

namespace flowscope {

static uint64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

DrainWorker::DrainWorker(Napi::Env env, Datapath* dp, Napi::ArrayBuffer target)
    : Napi::AsyncWorker(env, "flowscope.drain"),
      deferred_(Napi::Promise::Deferred::New(env)),
      owner_(Napi::Persistent(dp->Value())),
      dp_(dp),
      target_(Napi::Persistent(target)),
      target_data_(static_cast<uint8_t*>(target.Data())),
      target_length_(target.ByteLength()) {}

DrainWorker::~DrainWorker() = default;

void DrainWorker::Fail(int negative_err, const char* call) {
  err_.err = negative_err < 0 ? -negative_err : negative_err;
  err_.call = call;
  err_.context = "the flow maps";
  SetError(call);
}

void DrainWorker::FailPartly(int negative_err, const char* call) {
  if (partial_err_.failed()) return;
  partial_err_.err = negative_err < 0 ? -negative_err : negative_err;
  partial_err_.call = call;
  partial_err_.context = "the flow maps";
  partial_err_.hint = "what was read is kept; what was not stays in the kernel for the next drain of this generation";
}

bool DrainWorker::Faulty(const char* site) {
  Datapath::Fault& f = dp_->fault();
  if (!f.nth || f.site != site) return false;
  return ++f.calls == f.nth;
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

// Adds one CPU's value of a flow entry to the entry's sum.
static inline void AddCpuValue(flow_value& sum, const flow_value& pc) {
  if (!pc.packets) return;
  sum.packets += pc.packets;
  sum.bytes += pc.bytes;
  if (!sum.first_seen_ns || pc.first_seen_ns < sum.first_seen_ns) sum.first_seen_ns = pc.first_seen_ns;
  if (pc.last_seen_ns > sum.last_seen_ns) sum.last_seen_ns = pc.last_seen_ns;
  sum.tcp_flags |= pc.tcp_flags;
  if (!sum.cgroup_id) sum.cgroup_id = pc.cgroup_id;
}

bool DrainWorker::DrainFlows(uint32_t gen) {
  flowscope_bpf* skel = dp_->skel();
  const bpf_map* map = gen ? skel->maps.flows_gen1 : skel->maps.flows_gen0;
  const size_t capacity = bpf_map__max_entries(map);
  if (target_length_ < capacity * (sizeof(flow_key) + sizeof(flow_value))) {
    Fail(-ENOSPC, "drain(target buffer)");
    err_.hint = "the flow buffer must hold flowMapEntries x (flow_key + flow_value) bytes";
    return false;
  }
  flow_capacity_ = capacity;
  DrainFlowMap(bpf_map__fd(map), sizeof(flow_value), gen, "bpf_map_lookup_and_delete_batch(flows)");
  return true;
}

// The set-aside map of an earlier version's generation `gen` (previous_maps.h),
// into the room this drain's own map left; what does not fit stays for the
// next drain of the generation. Unpinned once empty, unless a program of the
// earlier version is still attached and may count into it again.
void DrainWorker::DrainPreviousFlows(uint32_t gen) {
  PreviousFlowMap& m = dp_->previous_flow_maps().of(gen);
  if (!m.open()) return;
  size_t before = flow_count_;
  bool emptied = DrainFlowMap(m.fd, m.value_size, gen, "bpf_map_lookup_and_delete_batch(previous flows)");
  previous_flows_ += flow_count_ - before;
  if (emptied && dp_->earlier_programs_attached() == 0) dp_->previous_flow_maps().Remove(gen);
}

// Empties a flow map with lookup_and_delete_batch into the target buffer
// from flow_count_ on, as far as it has room; true when the map was found
// empty. value_size is the map's: the current layout's, or an earlier one's
// (a prefix of it, previous_maps.h).
bool DrainWorker::DrainFlowMap(int fd, size_t value_size, uint32_t gen, const char* call) {
  const int ncpus = dp_->ncpus();
  const size_t capacity = flow_capacity_;
  // Per-CPU values come rounded up to 8 bytes each, CPU after CPU.
  const size_t cpu_stride = (value_size + 7) & ~size_t(7);
  const size_t value_stride = cpu_stride * ncpus;
  const bool current_layout = value_size == sizeof(flow_value);
  flow_key* keys = reinterpret_cast<flow_key*>(target_data_);
  flow_value* sums = reinterpret_cast<flow_value*>(target_data_ + capacity * sizeof(flow_key));

  uint32_t batch = static_cast<uint32_t>(std::min<size_t>(capacity, dp_->drain_batch()));
  std::vector<uint8_t> values(batch * value_stride);

  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  uint64_t in_token = 0, out_token = 0;
  bool first = true;
  while (flow_count_ < capacity) {
    // The kernel writes the keys straight into their final place.
    uint32_t room = static_cast<uint32_t>(std::min<size_t>(batch, capacity - flow_count_));
    uint32_t count = room;
    int err;
    if (Faulty("flows")) {
      err = -EIO;
      count = 0;
    } else {
      err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &in_token, &out_token, keys + flow_count_,
                                            values.data(), &count, &opts);
    }
    if (err && err != -ENOENT) {
      if (err == -ENOSPC && count == 0) {
        // One hash bucket holds more entries than the batch: grow and retry,
        // unless the buffer's room is what is short (then the next drain).
        if (room < batch) return false;
        batch *= 2;
        values.resize(batch * value_stride);
        continue;
      }
      // A failed batch deletes nothing it did not copy out (the kernel
      // deletes a bucket's entries only after copying them), so the entries
      // not taken stay in this generation and the next drain of it finds
      // them. What was taken is kept: the drain is partial, not lost.
      FailPartly(err, call);
      return false;
    }
    for (uint32_t i = 0; i < count; i++) {
      const uint8_t* v = values.data() + i * value_stride;
      flow_value sum;
      memset(&sum, 0, sizeof(sum));
      for (int c = 0; c < ncpus; c++) {
        if (current_layout) {
          AddCpuValue(sum, *reinterpret_cast<const flow_value*>(v + c * cpu_stride));
        } else {
          flow_value pc;
          memset(&pc, 0, sizeof(pc));
          memcpy(&pc, v + c * cpu_stride, value_size);
          AddCpuValue(sum, pc);
        }
      }
      // Entries are created with a packet, so an empty sum cannot happen; if it
      // did, the key stays and the record says 0 packets, which is harmless.
      sums[flow_count_] = sum;
      iface_totals& t = TotalsFor(keys[flow_count_].ifindex, keys[flow_count_].direction, gen);
      t.packets += sum.packets;
      t.bytes += sum.bytes;
      flow_count_++;
    }
    if (err == -ENOENT) return true;
    in_token = out_token;
    first = false;
  }
  return false;
}

// The totals of one interface and direction; a drain sees few interfaces, so
// a linear scan from the last hit beats a hash map here.
iface_totals& DrainWorker::TotalsFor(uint32_t ifindex, uint8_t direction, uint8_t gen) {
  size_t& last = last_totals_;
  if (last < ifaces_.size() && ifaces_[last].key.ifindex == ifindex && ifaces_[last].key.direction == direction)
    return ifaces_[last].totals;
  for (size_t i = 0; i < ifaces_.size(); i++) {
    if (ifaces_[i].key.ifindex == ifindex && ifaces_[i].key.direction == direction) {
      last = i;
      return ifaces_[i].totals;
    }
  }
  iface_record r;
  memset(&r, 0, sizeof(r));
  r.key.ifindex = ifindex;
  r.key.direction = direction;
  r.key.gen = gen;
  ifaces_.push_back(r);
  last = ifaces_.size() - 1;
  return ifaces_.back().totals;
}

// Adds each interface's frames that are in no flow (iface_stats of the closed
// generation) to its totals, and zeroes those entries for the generation's next turn.
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
    int err = Faulty("iface-lookup") ? -EIO : bpf_map_lookup_elem(fd, &key, per_cpu.data());
    if (err == -ENOENT) continue;
    if (err) {
      // Not read, so not reset: the counts stay for the next drain of this generation.
      FailPartly(err, "bpf_map_lookup_elem(iface_stats)");
      continue;
    }
    iface_value sum;
    memset(&sum, 0, sizeof(sum));
    for (const iface_value& v : per_cpu) {
      sum.other_packets += v.other_packets;
      sum.other_bytes += v.other_bytes;
      sum.overflow_packets += v.overflow_packets;
      sum.overflow_bytes += v.overflow_bytes;
    }
    if (!sum.other_packets && !sum.overflow_packets) continue;
    err = Faulty("iface-reset") ? -EIO : bpf_map_update_elem(fd, &key, zero.data(), BPF_EXIST);
    if (err) {
      // Not reset, so not counted now: the next drain of this generation reads them again.
      FailPartly(err, "bpf_map_update_elem(iface_stats) [reset]");
      continue;
    }
    iface_totals& t = TotalsFor(key.ifindex, key.direction, gen);
    t.other_packets += sum.other_packets;
    t.other_bytes += sum.other_bytes;
    t.overflow_packets += sum.overflow_packets;
    t.overflow_bytes += sum.overflow_bytes;
    t.packets += sum.other_packets + sum.overflow_packets;
    t.bytes += sum.other_bytes + sum.overflow_bytes;
  }
  return true;
}

bool DrainWorker::ReadFailures() {
  int fd = bpf_map__fd(dp_->skel()->maps.failures);
  std::vector<uint64_t> per_cpu(dp_->ncpus());
  for (uint32_t k = 0; k < FAIL_KIND_COUNT; k++) {
    int err = bpf_map_lookup_elem(fd, &k, per_cpu.data());
    if (err) {
      FailPartly(err, "bpf_map_lookup_elem(failures)");
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
  // After the flip nothing more rejects the drain: what was taken is handed
  // over, with the first failure, so no count read out of the kernel is lost.
  if (!DrainFlows(gen)) return;
  DrainPreviousFlows(gen);
  DrainIfaces(gen);
  ReadFailures();
  // Where the next drain's interval starts, for this agent and the next one
  // that adopts the pinned maps.
  auto* bss = dp_->skel()->bss;
  bss->drained_until_realtime_ns = closed_realtime_ns_;
  bss->drained_until_mono_ns = closed_mono_ns_;
  drain_seq_ = __atomic_add_fetch(&bss->drain_seq, 1, __ATOMIC_ACQ_REL);
  duration_ns_ = NowNs(CLOCK_MONOTONIC) - start;
}

void DrainWorker::OnOK() {
  dp_->busy().store(false);
  Napi::Env env = Env();
  Napi::Object result = Napi::Object::New(env);

  result.Set("flows", target_.Value());
  result.Set("flowCount", Napi::Number::New(env, static_cast<double>(flow_count_)));
  result.Set("flowCapacity", Napi::Number::New(env, static_cast<double>(flow_capacity_)));
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
  result.Set("drainSeq", Napi::Number::New(env, static_cast<double>(drain_seq_)));
  result.Set("previousLayoutFlows", Napi::Number::New(env, static_cast<double>(previous_flows_)));
  result.Set("previousLayoutMapsLeft", Napi::Number::New(env, dp_->previous_flow_maps().left()));
  if (partial_err_.failed()) {
    Napi::Error e = ToJsError(env, partial_err_);
    result.Set("partialError", e.Value());
  }
  deferred_.Resolve(result);
}

void DrainWorker::OnError(const Napi::Error&) {
  dp_->busy().store(false);
  deferred_.Reject(ToJsError(Env(), err_).Value());
}

}  // namespace flowscope
