// OCI seccomp profiles compiled to classic BPF for the guest agent (docs/seccomp.md).
import { compileSeccompWithFlags } from './compile.js';

export { compileSeccompWithFlags, type CompiledSeccomp } from './compile.js';
export { defaultSeccompProfile } from './default-profile.js';
export type { OciSeccompProfile, OciSeccompSyscall, OciSeccompArg, SeccompActionName, SeccompArch, SeccompFlagName, SeccompOperator } from './profile.js';

/** The filter alone: struct sock_filter[] bytes for x86_64. Throws VcError INVALID_CONFIG naming
 *  `field` and the bad value. Flags and warnings: compileSeccompWithFlags. */
export function compileSeccomp(profile: unknown, field: string): Buffer {
  return compileSeccompWithFlags(profile, field).filter;
}
