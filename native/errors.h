// Errors thrown to JavaScript carry the errno, the call that failed and a hint
// that says what to do about it.
#pragma once
#include <napi.h>
#include <string>

namespace flowscope {

// A failed system or libbpf call, captured off the JS thread (AsyncWorker) and
// turned into a JS Error on it.
struct SysError {
  int err = 0;            // positive errno
  std::string call;       // e.g. "bpf_link_create(BPF_TCX_INGRESS)"
  std::string context;    // e.g. "ifindex 4"
  std::string hint;       // what to do; empty = derived from err
  std::string detail;     // extra text, e.g. the tail of the verifier log

  bool failed() const { return err != 0; }
};

// A SysError for err (an errno, either sign) from `call` on `context`.
SysError SysErrorOf(int err, const std::string& call, const std::string& context, const std::string& hint = "");

// A hint for an errno that is common in this addon's calls.
std::string HintFor(int err, const std::string& call);

// The message of such an error: "<call> on <context> failed: <strerror> (<ECODE>). <hint>"
std::string ToJsErrorText(const SysError& e);

// Builds the JS Error: message "<call> on <context> failed: <strerror> (<ECODE>). <hint>"
// with properties errno, code, syscall and hint.
Napi::Error ToJsError(Napi::Env env, const SysError& e);

// Throws ToJsError(...) for a negative libbpf return value.
[[noreturn]] void ThrowSys(Napi::Env env, int negative_err, const std::string& call,
                           const std::string& context, const std::string& hint = "");

}  // namespace flowscope
