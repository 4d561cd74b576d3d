// Runs a loaded program on a crafted frame with BPF_PROG_TEST_RUN, off the JS
// thread: the parser tests and the per-packet benchmark use it.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "errors.h"

namespace flowscope {

class Datapath;

class TestRunWorker : public Napi::AsyncWorker {
 public:
  TestRunWorker(Napi::Env env, Datapath* dp, int prog_fd, std::string name, std::vector<uint8_t> frame,
                uint32_t repeat);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Datapath* dp_;
  int prog_fd_;
  std::string name_;
  std::vector<uint8_t> frame_;
  uint32_t repeat_;
  SysError err_;
  uint32_t retval_ = 0;
  uint32_t duration_ns_ = 0;
};

}  // namespace flowscope
