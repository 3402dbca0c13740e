// The process-level half of EnterJail (jail.cc): limits, environment, credentials.
#pragma once

#include "common/result.h"
#include "jail/jail.h"

namespace vmm::jail {

// RLIMIT_CORE 0, RLIMIT_FSIZE and RLIMIT_NOFILE from `o`; SIGXFSZ ignored so that a write past
// the file limit fails with EFBIG instead of killing the VMM.
vc::Status SetLimits(const JailOptions& o);

// Empties the environment, including the block /proc/PID/environ shows: blanked, and cut to
// nothing where CAP_SYS_RESOURCE allows (call before DropPrivileges).
vc::Status ClearEnvironment();

// No supplementary groups, o.gid and o.uid for real/effective/saved ids (which clears every
// capability), not dumpable, no_new_privs.
vc::Status DropPrivileges(const JailOptions& o);

}  // namespace vmm::jail
