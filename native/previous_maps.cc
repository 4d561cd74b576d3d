#include "previous_maps.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

namespace flowscope {

static const char* kFlowMapNames[FLOW_GENERATIONS] = {"flows_gen0", "flows_gen1"};

bool IsReadableEarlierFlowLayout(const bpf_map_info& info) {
  return info.type == BPF_MAP_TYPE_PERCPU_HASH && info.key_size == sizeof(flow_key) &&
         info.value_size < sizeof(flow_value) && info.value_size >= offsetof(flow_value, tcp_flags) + sizeof(__u16);
}

static bool MapInfo(int fd, bpf_map_info* info) {
  memset(info, 0, sizeof(*info));
  unsigned len = sizeof(*info);
  return bpf_obj_get_info_by_fd(fd, info, &len) == 0;
}

static SysError Fail(int err, const std::string& call, const std::string& path, const std::string& hint = "") {
  SysError e;
  e.err = err < 0 ? -err : err;
  e.call = call;
  e.context = path;
  e.hint = hint;
  return e;
}

PreviousFlowMaps::~PreviousFlowMaps() { Release(); }

SysError PreviousFlowMaps::SetAside(const PinDir& pins) {
  Release();
  bool moved = false;
  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    std::string current = pins.MapPath(kFlowMapNames[gen]);
    std::string aside = pins.MapPath(std::string("previous-") + kFlowMapNames[gen]);
    int fd = bpf_obj_get(current.c_str());
    if (fd < 0) continue;
    bpf_map_info info;
    bool earlier = MapInfo(fd, &info) && IsReadableEarlierFlowLayout(info);
    close(fd);
    // A map that fits is reused by libbpf; one that neither fits nor reads
    // as an earlier layout makes the load fail with its own hint.
    if (!earlier) continue;
    if (access(aside.c_str(), F_OK) == 0)
      return Fail(EEXIST, "rename", current,
                  "flow maps of two earlier versions are pinned (an upgrade before the last one was drained); "
                  "`flowscope detach` removes them (their undrained counts are lost), then start again");
    if (rename(current.c_str(), aside.c_str()) != 0) return Fail(-errno, "rename", current);
    moved = true;
  }
  // The outer map's inner template has the earlier value size: the new
  // programs need a new one. The earlier programs keep theirs by reference.
  if (moved) PinDir::Unpin(pins.MapPath("flow_gens"));

  for (uint32_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
    PreviousFlowMap& m = maps_[gen];
    m.path = pins.MapPath(std::string("previous-") + kFlowMapNames[gen]);
    int fd = bpf_obj_get(m.path.c_str());
    if (fd < 0) continue;
    bpf_map_info info;
    if (!MapInfo(fd, &info) || !IsReadableEarlierFlowLayout(info)) {
      close(fd);
      return Fail(EINVAL, "bpf_obj_get_info_by_fd", m.path,
                  "a set-aside flow map this version cannot read; `flowscope detach` removes it, then start again");
    }
    m.fd = fd;
    m.value_size = info.value_size;
    m.max_entries = info.max_entries;
    value_size_found_ = info.value_size;
  }
  return SysError{};
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
