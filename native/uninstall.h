// Uninstall (`flowscope detach`): removes what flowscope left on the node
// without loading any program, so it works on the pins of any version.
#pragma once
#include <napi.h>

namespace flowscope {

// removePinned(dir) -> { links, filters }: takes the pin directory's lock
// (refusing while an agent owns it), detaches every pinned link and
// flowscope filter (and the clsact qdiscs flowscope created, when no other
// filter is on them), then removes every pin and the directory.
Napi::Value RemovePinned(const Napi::CallbackInfo& info);

// removeOrphanClsact(ifindex) -> number: see RemoveOrphanClsact (attach.h).
Napi::Value RemoveOrphanClsactJs(const Napi::CallbackInfo& info);

}  // namespace flowscope
