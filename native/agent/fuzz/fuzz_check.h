// What the agent's libFuzzer targets share: a broken invariant stops the run as a crash, so
// libFuzzer keeps the input that broke it.
#pragma once

namespace agent_fuzz {

inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace agent_fuzz
