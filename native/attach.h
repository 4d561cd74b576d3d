// Attaching the programs to an interface hook, and detaching exactly what was
// attached. Three mechanisms, in order of preference:
//   tcx       BPF_LINK_CREATE with BPF_TCX_{INGRESS,EGRESS} (kernel >= 6.6):
//             a link owned by this process; it goes away when the process does.
//   xdp-link  BPF_LINK_CREATE with BPF_XDP (kernel >= 5.9): the same.
//   clsact    a netlink tc filter on the clsact qdisc (any kernel): it stays
//             after the process dies; it carries a fixed handle and priority,
//             and is told from another tool's filter by its program id.
// Links and filters can be handed from one agent to the next (pins.h): the
// next agent adopts them and swaps in its own program atomically
// (BPF_LINK_UPDATE, or a tc filter replace), so counting never pauses.
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
  bool created_clsact = false;   // clsact: flowscope created the qdisc (destroyed with the last filter, if no other tool's is left)
  uint32_t prog_id = 0;          // the program attached (clsact: how flowscope's filter is recognised)
};

const char* HookName(Hook hook);
const char* MechanismName(Mechanism m);

// Attaches prog at hook on ifindex. For tc hooks, `mechanism` is Tcx (falls
// back to Clsact when the kernel has no TCX) or Clsact (forced).
// Returns a failed SysError on error, with `out` untouched.
SysError AttachProgram(const bpf_program* prog, int ifindex, Hook hook, Mechanism mechanism, Attachment* out);

// Detaches exactly what was attached: a link is closed (its pin must be gone
// for it to detach); a clsact filter is deleted only while it still runs our
// program, and the qdisc only if flowscope created it and no other filter is
// left on it. Errors are returned, not thrown: detaching also runs from destructors.
SysError DetachProgram(Attachment* a);

// Takes over a link another agent pinned (link_fd from bpf_obj_get) and
// swaps its program for new_prog atomically. ENOENT: the link is defunct
// (its interface is gone) or is not at ifindex/hook; nothing was changed.
SysError AdoptLink(int link_fd, int ifindex, Hook hook, int new_prog_fd, Attachment* out);

// Takes over flowscope's clsact filter at ifindex/hook if it still runs the
// program pinned_prog_fd, and replaces that program by new_prog atomically.
// ENOENT: no such filter, or another program runs there; nothing was changed.
SysError AdoptClsact(int pinned_prog_fd, int ifindex, Hook hook, bool created_qdisc, int new_prog_fd, Attachment* out);

// Filters on ifindex's clsact qdisc (both directions) other than flowscope's.
int CountForeignClsactFilters(int ifindex, SysError* err);

// Uninstall sweep: removes clsact filters at flowscope's handle and priority
// whose program is named flowscope_* (left by a version that did not pin, or
// whose pins were removed by hand). Reading a program's name by id needs
// CAP_SYS_ADMIN; without it nothing is removed. Returns how many.
int RemoveOrphanClsact(int ifindex, SysError* err);

// The kernel id of a program or link fd; 0 if unknown.
uint32_t ProgIdOf(int prog_fd);

}  // namespace flowscope
