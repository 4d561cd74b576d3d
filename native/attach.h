// Attaching the programs to an interface hook, and detaching exactly what was
// attached. Three mechanisms, in order of preference:
//   tcx       BPF_LINK_CREATE with BPF_TCX_{INGRESS,EGRESS} (kernel >= 6.6):
//             a link owned by this process; it goes away when the process does.
//   xdp-link  BPF_LINK_CREATE with BPF_XDP (kernel >= 5.9): the same.
//   clsact    a netlink tc filter on the clsact qdisc (any kernel): it stays
//             after the process dies, so it carries a fixed handle and
//             priority by which the next start finds and removes it.
#pragma once
#include <string>

#include "errors.h"

struct bpf_program;

namespace flowscope {

enum class Hook { TcIngress, TcEgress, Xdp };
enum class Mechanism { Tcx, Clsact, XdpLink };

// The handle and priority of flowscope's clsact filters: 0xf10w-ish, chosen to
// stay clear of the handles tc(8) and Cilium pick.
constexpr unsigned kClsactHandle = 0xF10C;
constexpr unsigned kClsactPriority = 0xF10C;

struct Attachment {
  int ifindex = 0;
  Hook hook = Hook::TcIngress;
  Mechanism mechanism = Mechanism::Tcx;
  int link_fd = -1;              // tcx, xdp-link
  bool created_clsact = false;   // clsact: this attachment created the qdisc
};

const char* HookName(Hook hook);
const char* MechanismName(Mechanism m);

// Attaches prog at hook on ifindex. For tc hooks, `mechanism` is Tcx (falls
// back to Clsact when the kernel has no TCX) or Clsact (forced).
// `own_existing_clsact`: a clsact qdisc already there was created by a dead
// flowscope (its filters were just removed), so this attachment owns it.
// Returns a failed SysError on error, with `out` untouched.
SysError AttachProgram(const bpf_program* prog, int ifindex, Hook hook, Mechanism mechanism,
                       bool own_existing_clsact, Attachment* out);

// Detaches exactly what AttachProgram attached. Errors are returned, not thrown:
// detaching also runs from destructors.
SysError DetachProgram(Attachment* a);

// Removes clsact filters that a previous flowscope process left on ifindex
// (found by handle and priority, checked by program name). Returns how many.
int RemoveStaleClsact(int ifindex, SysError* err);

}  // namespace flowscope
