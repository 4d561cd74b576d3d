// flowscope.node: the native side of the datapath. See datapath.h.
#include <napi.h>

#include "datapath.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return flowscope::Datapath::Init(env, exports);
}

NODE_API_MODULE(flowscope, InitAddon)
