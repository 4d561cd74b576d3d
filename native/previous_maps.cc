#include "previous_maps.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

namespace flowscope {

static const char* kFlowMapNames[FLOW_GENERATIONS] = {"flows_gen0", "flows_gen1"};

static std::string CurrentPath(const PinDir& pins, uint32_t gen) { return pins.MapPath(kFlowMapNames[gen]); }
static std::string AsidePath(const PinDir& pins, uint32_t gen) { return pins.MapPath(std::string("previous-") + kFlowMapNames[gen]); }

bool IsReadableEarlierFlowLayout(const bpf_map_info& info) {
  return info.type == BPF_MAP_TYPE_PERCPU_HASH && info.key_size == sizeof(flow_key) &&
         info.value_size < sizeof(flow_value) && info.value_size >= offsetof(flow_value, tcp_flags) + sizeof(__u16);
}

static bool MapInfo(int fd, bpf_map_info* info) {
  memset(info, 0, sizeof(*info));
  unsigned len = sizeof(*info);
  return bpf_obj_get_info_by_fd(fd, info, &len) == 0;
}

PreviousFlowMaps::~PreviousFlowMaps() { Release(); }

static bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

static SysError UnpinOuter(const PinDir& pins) {
  std::string path = pins.MapPath("flow_gens");
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysErrorOf(-errno, "unlink", path);
  return SysError{};
}

SysError PreviousFlowMaps::SetAside(const PinDir& pins) {
  Release();
  std::string current[FLOW_GENERATIONS], aside[FLOW_GENERATIONS];
  bool earlier[FLOW_GENERATIONS] = {};
  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    current[gen] = CurrentPath(pins, gen);
    aside[gen] = AsidePath(pins, gen);
    moved_now_[gen] = false;
    int fd = bpf_obj_get(current[gen].c_str());
    if (fd < 0) continue;
    bpf_map_info info;
    // A map that fits is reused by libbpf; one that neither fits nor reads
    // as an earlier layout makes the load fail with its own hint.
    earlier[gen] = MapInfo(fd, &info) && IsReadableEarlierFlowLayout(info);
    close(fd);
  }
  // Checked for both generations before anything moves.
  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    if (earlier[gen] && Exists(aside[gen]))
      return SysErrorOf(EEXIST, "rename", current[gen],
                  "flow maps of two earlier versions are pinned (an upgrade before the last one was drained); "
                  "`flowscope detach` removes them (their undrained counts are lost), then start again");
  }
  // The outer map's inner template has the earlier value size: the new
  // programs need a new one (the earlier programs keep theirs by reference).
  // Unpinned first, and again below whenever a flow map is missing, so that
  // a start killed half-way never leaves an outer map of the earlier layout
  // for the next one to reuse.
  if (earlier[0] || earlier[1]) {
    SysError e = UnpinOuter(pins);
    if (e.failed()) return e;
  }
  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    if (!earlier[gen]) continue;
    if (rename(current[gen].c_str(), aside[gen].c_str()) != 0) {
      SysError e = SysErrorOf(-errno, "rename", current[gen]);
      Restore(pins);
      return e;
    }
    moved_now_[gen] = true;
  }
  if (!Exists(current[0]) || !Exists(current[1])) {
    SysError e = UnpinOuter(pins);
    if (e.failed()) {
      Restore(pins);
      return e;
    }
  }

  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    PreviousFlowMap& m = maps_[gen];
    m.path = aside[gen];
    int fd = bpf_obj_get(m.path.c_str());
    if (fd < 0) continue;
    bpf_map_info info;
    if (!MapInfo(fd, &info) || !IsReadableEarlierFlowLayout(info)) {
      close(fd);
      Release();
      Restore(pins);
      return SysErrorOf(EINVAL, "bpf_obj_get_info_by_fd", m.path,
                  "a set-aside flow map this version cannot read; `flowscope detach` removes it, then start again");
    }
    m.fd = fd;
    m.value_size = info.value_size;
    m.max_entries = info.max_entries;
    value_size_found_ = info.value_size;
  }
  return SysError{};
}

void PreviousFlowMaps::Restore(const PinDir& pins) {
  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    if (!moved_now_[gen]) continue;
    rename(AsidePath(pins, gen).c_str(), CurrentPath(pins, gen).c_str());
    moved_now_[gen] = false;
  }
}

void PreviousFlowMaps::Remove(uint32_t gen) {
  PreviousFlowMap& m = maps_[gen & 1];
  if (!m.open()) return;
  PinDir::Unpin(m.path);
  close(m.fd);
  m.fd = -1;
}

void PreviousFlowMaps::Release() {
  for (PreviousFlowMap& m : maps_) {
    if (m.open()) close(m.fd);
    m.fd = -1;
  }
}

}  // namespace flowscope
