// Pinned state: what one node's agent leaves under bpffs so that the next
// agent on the node adopts it instead of detaching and attaching again.
//
//   DIR/                 e.g. /sys/fs/bpf/flowscope/NODE; flock'ed by the owning agent
//   DIR/maps/NAME        every map of the object, .bss (active_gen, the agent's
//                        bookkeeping) included: pinned by libbpf at load
//   DIR/links/HOOK-IFX   a TCX or XDP link (it keeps the program attached)
//   DIR/filters/HOOK-IFX the program a clsact filter runs: how the next agent
//                        tells flowscope's filter from another tool's by
//                        program id, with CAP_BPF only (no CAP_SYS_ADMIN)
//   DIR/filters/qdisc-IFX a marker (a pin of the same program): flowscope
//                        created this interface's clsact qdisc
//
// Everything here needs CAP_BPF (bpffs access) and nothing else.
#pragma once
#include <string>
#include <vector>

#include "attach.h"
#include "errors.h"

namespace flowscope {

// One attachment found under DIR/links or DIR/filters.
struct PinnedAttachment {
  int ifindex = 0;
  Hook hook = Hook::TcIngress;
  bool is_link = false;       // links/ (tcx, xdp-link); else filters/ (clsact)
  bool created_qdisc = false; // filters/qdisc-IFX exists
};

class PinDir {
 public:
  PinDir() = default;
  ~PinDir();
  PinDir(const PinDir&) = delete;
  PinDir& operator=(const PinDir&) = delete;

  // Creates DIR and its subdirectories (mkdir -p), checks that they are on
  // bpffs, and takes an exclusive flock on DIR for the life of this object.
  // err == EWOULDBLOCK: another live process holds it.
  SysError Open(const std::string& dir);
  bool is_open() const { return lock_fd_ >= 0; }
  const std::string& dir() const { return dir_; }

  std::string MapPath(const std::string& name) const { return dir_ + "/maps/" + name; }
  std::string LinkPath(Hook hook, int ifindex) const;
  std::string FilterPath(Hook hook, int ifindex) const;
  std::string QdiscMarkerPath(int ifindex) const;

  // What links/ and filters/ hold.
  std::vector<PinnedAttachment> List() const;

  // Pins fd at path, replacing what was there.
  SysError Pin(int fd, const std::string& path) const;
  // Removes a pin; a missing one is fine.
  static void Unpin(const std::string& path);

  // Removes every pin, the subdirectories and DIR (and the parent if it is
  // left empty), then releases the lock. Links and maps whose last reference
  // was their pin go away with it.
  SysError RemoveAll();
  // Releases the lock and keeps everything pinned.
  void Release();

 private:
  std::string dir_;
  int lock_fd_ = -1;
};

// Reads the owner fields of the .bss pinned at DIR/maps/bss (another agent's),
// for the message that refuses a second agent. Empty when unreadable.
std::string DescribePinnedOwner(const std::string& dir);

}  // namespace flowscope
