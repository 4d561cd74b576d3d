#include "attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <string.h>
#include <unistd.h>

#include <string>

namespace flowscope {

// Attach types of the TCX hooks (uapi enum bpf_attach_type, kernel >= 6.6).
// Spelled out because the uapi headers of older distributions lack them.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

const char* HookName(Hook hook) {
  switch (hook) {
    case Hook::TcIngress: return "tc-ingress";
    case Hook::TcEgress: return "tc-egress";
    case Hook::Xdp: return "xdp";
  }
  return "?";
}

const char* MechanismName(Mechanism m) {
  switch (m) {
    case Mechanism::Tcx: return "tcx";
    case Mechanism::Clsact: return "clsact";
    case Mechanism::XdpLink: return "xdp-link";
  }
  return "?";
}

static std::string IfContext(int ifindex) { return "ifindex " + std::to_string(ifindex); }

static SysError Fail(int negative_err, const std::string& call, int ifindex) {
  SysError e;
  e.err = negative_err < 0 ? -negative_err : negative_err;
  e.call = call;
  e.context = IfContext(ifindex);
  return e;
}

static bpf_tc_hook ClsactHook(int ifindex, Hook hook) {
  bpf_tc_hook h;
  memset(&h, 0, sizeof(h));
  h.sz = sizeof(h);
  h.ifindex = ifindex;
  h.attach_point = hook == Hook::TcIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return h;
}

static bpf_tc_opts ClsactOpts() {
  bpf_tc_opts o;
  memset(&o, 0, sizeof(o));
  o.sz = sizeof(o);
  o.handle = kClsactHandle;
  o.priority = kClsactPriority;
  return o;
}

static SysError AttachClsact(int prog_fd, int ifindex, Hook hook, bool own_existing, Attachment* out) {
  bpf_tc_hook h = ClsactHook(ifindex, hook);
  int err = bpf_tc_hook_create(&h);
  bool created = err == 0 || (err == -EEXIST && own_existing);
  if (err && err != -EEXIST) return Fail(err, "bpf_tc_hook_create(clsact)", ifindex);

  bpf_tc_opts o = ClsactOpts();
  o.prog_fd = prog_fd;
  err = bpf_tc_attach(&h, &o);
  if (err) {
    if (created && !own_existing) {
      h.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&h);
    }
    SysError e = Fail(err, std::string("bpf_tc_attach(") + HookName(hook) + ")", ifindex);
    if (err == -EEXIST)
      e.hint = "a flowscope filter is already attached here (another agent running?); "
               "remove it with `tc filter del dev IFACE ingress|egress handle 0xf10c prio 61708 bpf`";
    return e;
  }
  out->link_fd = -1;
  out->created_clsact = created;
  return SysError{};
}

SysError AttachProgram(const bpf_program* prog, int ifindex, Hook hook, Mechanism mechanism,
                       bool own_existing_clsact, Attachment* out) {
  int prog_fd = bpf_program__fd(prog);
  if (prog_fd < 0) return Fail(prog_fd, "bpf_program__fd", ifindex);
  Attachment a;
  a.ifindex = ifindex;
  a.hook = hook;

  if (hook == Hook::Xdp) {
    int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, nullptr);
    if (fd < 0) return Fail(fd, "bpf_link_create(BPF_XDP) [xdp]", ifindex);
    a.mechanism = Mechanism::XdpLink;
    a.link_fd = fd;
    *out = a;
    return SysError{};
  }

  if (mechanism == Mechanism::Tcx) {
    int type = hook == Hook::TcIngress ? kBpfTcxIngress : kBpfTcxEgress;
    int fd = bpf_link_create(prog_fd, ifindex, static_cast<bpf_attach_type>(type), nullptr);
    if (fd >= 0) {
      a.mechanism = Mechanism::Tcx;
      a.link_fd = fd;
      *out = a;
      return SysError{};
    }
    // EINVAL: the kernel does not know the TCX attach types. Anything else
    // (no such device, no permission) would fail the same way with clsact.
    if (fd != -EINVAL)
      return Fail(fd, std::string("bpf_link_create(BPF_TCX_") +
                          (hook == Hook::TcIngress ? "INGRESS" : "EGRESS") + ")", ifindex);
  }
  a.mechanism = Mechanism::Clsact;
  SysError e = AttachClsact(prog_fd, ifindex, hook, own_existing_clsact, &a);
  if (e.failed()) return e;
  *out = a;
  return SysError{};
}

SysError DetachProgram(Attachment* a) {
  if (a->mechanism != Mechanism::Clsact) {
    if (a->link_fd >= 0) close(a->link_fd);
    a->link_fd = -1;
    return SysError{};
  }
  bpf_tc_hook h = ClsactHook(a->ifindex, a->hook);
  bpf_tc_opts o = ClsactOpts();
  int err = bpf_tc_detach(&h, &o);
  // ENOENT/ENODEV: the filter or the interface is gone already: nothing left to detach.
  if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
    return Fail(err, std::string("bpf_tc_detach(") + HookName(a->hook) + ")", a->ifindex);
  if (a->created_clsact) {
    h.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    err = bpf_tc_hook_destroy(&h);
    if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
      return Fail(err, "bpf_tc_hook_destroy(clsact)", a->ifindex);
  }
  return SysError{};
}

// Whether prog_id names one of flowscope's programs (names are cut to 15 chars).
static bool IsFlowscopeProgram(unsigned prog_id) {
  int fd = bpf_prog_get_fd_by_id(prog_id);
  if (fd < 0) return false;
  bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && strncmp(info.name, "flowscope_", 10) == 0;
  close(fd);
  return ours;
}

int RemoveStaleClsact(int ifindex, SysError* err) {
  int removed = 0;
  for (Hook hook : {Hook::TcIngress, Hook::TcEgress}) {
    bpf_tc_hook h = ClsactHook(ifindex, hook);
    bpf_tc_opts o = ClsactOpts();
    int r = bpf_tc_query(&h, &o);
    if (r) continue;  // no clsact qdisc or no filter at our handle: nothing stale
    if (!IsFlowscopeProgram(o.prog_id)) continue;
    bpf_tc_opts d = ClsactOpts();
    r = bpf_tc_detach(&h, &d);
    if (r) {
      *err = Fail(r, std::string("bpf_tc_detach(stale ") + HookName(hook) + ")", ifindex);
      return removed;
    }
    removed++;
  }
  return removed;
}

}  // namespace flowscope
