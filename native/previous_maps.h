// Flow maps of an earlier version. An upgrade that changes struct flow_value
// leaves pinned flow maps the new programs cannot use (libbpf reuses a pinned
// map only if it fits exactly). Rather than refuse to start, or drop what
// they hold, the agent sets them aside before its load:
//
//   DIR/maps/flows_gen0 -> DIR/maps/previous-flows_gen0   (and gen1)
//   DIR/maps/flow_gens  -> unpinned (the old programs hold their own reference)
//
// loads its programs with new flow maps (bss, iface_stats and failures are
// reused as usual), swaps them into the pinned links, and drains each set-aside
// map with the generation it belongs to, reading values with their own size:
// flow_value only grows at its end (flowscope.h), so an older value is a
// prefix of the current one and the fields it lacks read as zero. A set-aside
// map is unpinned once a drain of its generation found it empty and no program
// of the earlier version is still attached. What is set aside and not yet
// drained when the agent stops stays pinned under the same names for the
// next start.
#pragma once
#include <bpf/bpf.h>

#include <cstdint>
#include <string>

#include "errors.h"
#include "flowscope.h"
#include "pins.h"

namespace flowscope {

struct PreviousFlowMap {
  int fd = -1;
  std::string path;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  bool open() const { return fd >= 0; }
};

class PreviousFlowMaps {
 public:
  PreviousFlowMaps() = default;
  ~PreviousFlowMaps();
  PreviousFlowMaps(const PreviousFlowMaps&) = delete;
  PreviousFlowMaps& operator=(const PreviousFlowMaps&) = delete;

  // Before the load: moves pinned flow maps of an earlier, readable layout
  // aside and opens what is set aside (now or by an earlier start). Fails
  // only when set-aside maps of one earlier layout meet pinned maps of
  // another (two upgrades without a drain between them).
  SysError SetAside(const PinDir& pins);

  // The set-aside map of a generation (closed: none).
  PreviousFlowMap& of(uint32_t gen) { return maps_[gen & 1]; }
  // After a failed load: puts back the maps this start moved aside, so that
  // the earlier version (a rollback) finds its maps where it left them.
  void Restore(const PinDir& pins);
  // Unpins and closes a generation's map: its counts were all drained.
  void Remove(uint32_t gen);
  // Closes the fds and keeps the pins (the next agent drains what is left).
  void Release();

  // The value size of the earlier layout found at start; 0 if none.
  uint32_t value_size_found() const { return value_size_found_; }
  int left() const { return maps_[0].open() + maps_[1].open(); }

 private:
  PreviousFlowMap maps_[FLOW_GENERATIONS];
  bool moved_now_[FLOW_GENERATIONS] = {};
  uint32_t value_size_found_ = 0;
};

// Whether a pinned flow map's layout is an earlier one the drain can read:
// same map type and key, a shorter value that holds at least the counters.
bool IsReadableEarlierFlowLayout(const bpf_map_info& info);

}  // namespace flowscope
