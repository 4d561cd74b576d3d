#include "attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
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

uint32_t ProgIdOf(int prog_fd) {
  bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  return bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 ? info.id : 0;
}

static SysError AttachClsact(int prog_fd, int ifindex, Hook hook, Attachment* out) {
  bpf_tc_hook h = ClsactHook(ifindex, hook);
  int err = bpf_tc_hook_create(&h);
  bool created = err == 0;
  if (err && err != -EEXIST) return Fail(err, "bpf_tc_hook_create(clsact)", ifindex);

  bpf_tc_opts o = ClsactOpts();
  o.prog_fd = prog_fd;
  err = bpf_tc_attach(&h, &o);
  if (err) {
    if (created) {
      h.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&h);
    }
    SysError e = Fail(err, std::string("bpf_tc_attach(") + HookName(hook) + ")", ifindex);
    if (err == -EEXIST)
      e.hint = "a filter is already attached at flowscope's handle 0xf10c prio 61708 (another agent running "
               "with another --node or --pin-path?); `flowscope detach` removes flowscope's, "
               "`tc filter show dev IFACE ingress` shows it";
    return e;
  }
  out->link_fd = -1;
  out->created_clsact = created;
  out->prog_id = o.prog_id ? o.prog_id : ProgIdOf(prog_fd);
  return SysError{};
}

SysError AttachProgram(const bpf_program* prog, int ifindex, Hook hook, Mechanism mechanism, Attachment* out) {
  int prog_fd = bpf_program__fd(prog);
  if (prog_fd < 0) return Fail(prog_fd, "bpf_program__fd", ifindex);
  Attachment a;
  a.ifindex = ifindex;
  a.hook = hook;
  a.prog_id = ProgIdOf(prog_fd);

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
  SysError e = AttachClsact(prog_fd, ifindex, hook, &a);
  if (e.failed()) return e;
  *out = a;
  return SysError{};
}

static bool Gone(int err) { return err == -ENOENT || err == -ENODEV || err == -EINVAL; }

SysError DetachProgram(Attachment* a) {
  if (a->mechanism != Mechanism::Clsact) {
    if (a->link_fd >= 0) close(a->link_fd);
    a->link_fd = -1;
    return SysError{};
  }
  bpf_tc_hook h = ClsactHook(a->ifindex, a->hook);
  bpf_tc_opts q = ClsactOpts();
  int err = bpf_tc_query(&h, &q);
  // Our handle and priority, but another program: another tool's filter now; leave it.
  if (err == 0 && q.prog_id == a->prog_id) {
    bpf_tc_opts o = ClsactOpts();
    err = bpf_tc_detach(&h, &o);
    if (err && !Gone(err)) return Fail(err, std::string("bpf_tc_detach(") + HookName(a->hook) + ")", a->ifindex);
  } else if (err && !Gone(err)) {
    return Fail(err, std::string("bpf_tc_query(") + HookName(a->hook) + ")", a->ifindex);
  }
  if (a->created_clsact) {
    SysError count_err;
    int others = CountForeignClsactFilters(a->ifindex, &count_err);
    if (count_err.failed()) return count_err.err == ENODEV ? SysError{} : count_err;
    if (others > 0) return SysError{};  // another tool uses the qdisc now: it stays
    h.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    err = bpf_tc_hook_destroy(&h);
    if (err && !Gone(err)) return Fail(err, "bpf_tc_hook_destroy(clsact)", a->ifindex);
  }
  return SysError{};
}

// BPF_LINK_TYPE_* of the links flowscope makes (uapi enum bpf_link_type);
// spelled out for older uapi headers.
constexpr uint32_t kLinkTypeXdp = 6;
constexpr uint32_t kLinkTypeTcx = 11;

SysError AdoptLink(int link_fd, int ifindex, Hook hook, int new_prog_fd, Attachment* out) {
  bpf_link_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  int err = bpf_obj_get_info_by_fd(link_fd, &info, &len);
  if (err) return Fail(err, "bpf_obj_get_info_by_fd(link)", ifindex);
  uint32_t want = hook == Hook::Xdp ? kLinkTypeXdp : kLinkTypeTcx;
  // tcx and xdp link info both start with the ifindex; 0 once the interface is gone.
  if (info.type != want || info.xdp.ifindex != static_cast<uint32_t>(ifindex))
    return Fail(-ENOENT, "adopt link (defunct or elsewhere)", ifindex);
  err = bpf_link_update(link_fd, new_prog_fd, nullptr);
  if (err) return Fail(err, std::string("bpf_link_update(") + HookName(hook) + ")", ifindex);
  out->ifindex = ifindex;
  out->hook = hook;
  out->mechanism = hook == Hook::Xdp ? Mechanism::XdpLink : Mechanism::Tcx;
  out->link_fd = link_fd;
  out->created_clsact = false;
  out->prog_id = ProgIdOf(new_prog_fd);
  return SysError{};
}

SysError AdoptClsact(int pinned_prog_fd, int ifindex, Hook hook, bool created_qdisc, int new_prog_fd, Attachment* out) {
  bpf_tc_hook h = ClsactHook(ifindex, hook);
  bpf_tc_opts q = ClsactOpts();
  int err = bpf_tc_query(&h, &q);
  if (err) return Fail(Gone(err) ? -ENOENT : err, std::string("bpf_tc_query(") + HookName(hook) + ")", ifindex);
  if (q.prog_id == 0 || q.prog_id != ProgIdOf(pinned_prog_fd))
    return Fail(-ENOENT, "adopt clsact filter (not flowscope's program)", ifindex);
  bpf_tc_opts o = ClsactOpts();
  o.prog_fd = new_prog_fd;
  o.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&h, &o);
  if (err) return Fail(err, std::string("bpf_tc_attach(") + HookName(hook) + ", replace)", ifindex);
  out->ifindex = ifindex;
  out->hook = hook;
  out->mechanism = Mechanism::Clsact;
  out->link_fd = -1;
  out->created_clsact = created_qdisc;
  out->prog_id = o.prog_id ? o.prog_id : ProgIdOf(new_prog_fd);
  return SysError{};
}

int CountForeignClsactFilters(int ifindex, SysError* err) {
  int count = 0;
  for (uint32_t minor : {TC_H_MIN_INGRESS, TC_H_MIN_EGRESS}) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
      *err = Fail(-errno, "socket(NETLINK_ROUTE)", ifindex);
      return count;
    }
    struct {
      nlmsghdr n;
      tcmsg t;
    } req;
    memset(&req, 0, sizeof(req));
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
    req.n.nlmsg_type = RTM_GETTFILTER;
    req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.n.nlmsg_seq = 1;
    req.t.tcm_family = AF_UNSPEC;
    req.t.tcm_ifindex = ifindex;
    req.t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, minor);
    if (send(fd, &req, req.n.nlmsg_len, 0) < 0) {
      *err = Fail(-errno, "send(RTM_GETTFILTER)", ifindex);
      close(fd);
      return count;
    }
    alignas(nlmsghdr) char buf[16384];
    bool done = false;
    while (!done) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        *err = Fail(-errno, "recv(RTM_GETTFILTER)", ifindex);
        break;
      }
      int left = static_cast<int>(n);
      for (nlmsghdr* m = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
        if (m->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (m->nlmsg_type == NLMSG_ERROR) {
          int e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(m))->error;
          if (e) *err = Fail(e, "RTM_GETTFILTER", ifindex);
          done = true;
          break;
        }
        if (m->nlmsg_type != RTM_NEWTFILTER) continue;
        const tcmsg* t = reinterpret_cast<const tcmsg*>(NLMSG_DATA(m));
        // A dump lists each classifier instance (handle 0) and then its filters.
        if (t->tcm_handle == 0) continue;
        unsigned prio = TC_H_MAJ(t->tcm_info) >> 16;
        if (t->tcm_handle == kClsactHandle && prio == kClsactPriority) continue;
        count++;
      }
    }
    close(fd);
    if (err->failed()) return count;
  }
  return count;
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

int RemoveOrphanClsact(int ifindex, SysError* err) {
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
