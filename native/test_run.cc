#include "test_run.h"

#include <bpf/bpf.h>

#include "datapath.h"

namespace flowscope {

TestRunWorker::TestRunWorker(Napi::Env env, Datapath* dp, int prog_fd, std::string name,
                             std::vector<uint8_t> frame, uint32_t repeat)
    : Napi::AsyncWorker(env, "flowscope.testRun"),
      deferred_(Napi::Promise::Deferred::New(env)),
      owner_(Napi::Persistent(dp->Value())),
      dp_(dp),
      prog_fd_(prog_fd),
      name_(std::move(name)),
      frame_(std::move(frame)),
      repeat_(repeat) {}

void TestRunWorker::Execute() {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame_.data(), .data_size_in = static_cast<uint32_t>(frame_.size()),
              .repeat = static_cast<int>(repeat_));
  int err = bpf_prog_test_run_opts(prog_fd_, &opts);
  if (err) {
    err_.err = err < 0 ? -err : err;
    err_.call = "bpf_prog_test_run_opts";
    err_.context = name_ + " with a " + std::to_string(frame_.size()) + "-byte frame";
    if (err_.err == EINVAL) err_.hint = "the kernel refuses frames shorter than 14 bytes (an Ethernet header)";
    SetError(err_.call);
    return;
  }
  retval_ = opts.retval;
  // The kernel reports the mean time of one run over `repeat` runs.
  duration_ns_ = opts.duration;
}

void TestRunWorker::OnOK() {
  dp_->busy().store(false);
  Napi::Env env = Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("retval", Napi::Number::New(env, static_cast<int32_t>(retval_)));
  result.Set("durationNs", Napi::Number::New(env, duration_ns_));
  deferred_.Resolve(result);
}

void TestRunWorker::OnError(const Napi::Error&) {
  dp_->busy().store(false);
  deferred_.Reject(ToJsError(Env(), err_).Value());
}

}  // namespace flowscope
