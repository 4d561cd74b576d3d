#include "errors.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>

namespace flowscope {

SysError SysErrorOf(int err, const std::string& call, const std::string& context, const std::string& hint) {
  SysError e;
  e.err = err < 0 ? -err : err;
  e.call = call;
  e.context = context;
  e.hint = hint;
  return e;
}

static const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case EEXIST: return "EEXIST";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case E2BIG: return "E2BIG";
    case ENOSPC: return "ENOSPC";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENXIO: return "ENXIO";
    case ENOSYS: return "ENOSYS";
    case ERANGE: return "ERANGE";
    case EIO: return "EIO";
    case EWOULDBLOCK: return "EWOULDBLOCK";
    case EROFS: return "EROFS";
    default: return "E?";
  }
}

std::string HintFor(int err, const std::string& call) {
  switch (err) {
    case EPERM:
    case EACCES:
      return "run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (and check that "
             "kernel.unprivileged_bpf_disabled or a LSM does not forbid it)";
    case ENODEV:
    case ENXIO:
      return "the interface does not exist (any more); check `ip link`";
    case EBUSY:
    case EEXIST:
      if (call.find("xdp") != std::string::npos)
        return "another XDP program is attached to this interface; remove it (`ip link set dev IFACE xdp off`) or use --hook tc";
      return "something is already attached there; detach it first";
    case EOPNOTSUPP:
      if (call.find("xdp") != std::string::npos)
        return "this interface does not support XDP; use --hook tc";
      return "the kernel does not support this; a kernel >= 5.15 is required (>= 6.6 for TCX links)";
    case EINVAL:
      if (call.find("TCX") != std::string::npos)
        return "the kernel has no TCX (needs >= 6.6); flowscope falls back to clsact";
      return "the kernel rejected the arguments; a kernel >= 5.15 with BTF is required";
    case ENOMEM:
      return "not enough locked memory or kernel memory for the maps; lower --flow-map-size";
    default:
      return "";
  }
}

std::string ToJsErrorText(const SysError& e) {
  char buf[256];
  // libbpf_strerror knows libbpf's own error codes as well as errno values.
  if (libbpf_strerror(e.err, buf, sizeof(buf)) != 0) snprintf(buf, sizeof(buf), "%s", strerror(e.err));
  std::string hint = e.hint.empty() ? HintFor(e.err, e.call) : e.hint;
  std::string msg = e.call;
  if (!e.context.empty()) msg += " on " + e.context;
  msg += " failed: " + std::string(buf) + " (" + ErrnoName(e.err) + ")";
  if (!hint.empty()) msg += ". " + hint;
  return msg;
}

Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  std::string hint = e.hint.empty() ? HintFor(e.err, e.call) : e.hint;
  std::string msg = ToJsErrorText(e);
  if (!e.detail.empty()) msg += "\n" + e.detail;
  Napi::Error error = Napi::Error::New(env, msg);
  error.Set("errno", Napi::Number::New(env, e.err));
  error.Set("code", Napi::String::New(env, ErrnoName(e.err)));
  error.Set("syscall", Napi::String::New(env, e.call));
  error.Set("hint", Napi::String::New(env, hint));
  return error;
}

void ThrowSys(Napi::Env env, int negative_err, const std::string& call, const std::string& context,
              const std::string& hint) {
  SysError e;
  e.err = negative_err < 0 ? -negative_err : negative_err;
  e.call = call;
  e.context = context;
  e.hint = hint;
  throw ToJsError(env, e);
}

}  // namespace flowscope
