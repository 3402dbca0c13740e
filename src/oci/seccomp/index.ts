// PLACEHOLDER of helper `seccomp`'s module (docs: contract of issue 14): the lead replaces this
// file with the real OCI LinuxSeccomp compiler at merge. Until then compileSeccomp returns a
// filter that allows every system call, so containers run with "Seccomp: 2" and nothing denied.

/** An OCI LinuxSeccomp object (runtime-spec config-linux.md#seccomp). */
export interface OciSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls?: Array<{
    names: string[];
    action: string;
    errnoRet?: number;
    args?: Array<{ index: number; value: number; valueTwo?: number; op: string }>;
  }>;
}

const SECCOMP_RET_ALLOW = 0x7fff0000;
const BPF_RET_K = 0x06;

/** The classic-BPF program (struct sock_filter[], little-endian) for a profile. */
export function compileSeccomp(profile: unknown, field: string): Buffer {
  void profile;
  void field;
  const insn = Buffer.alloc(8);
  insn.writeUInt16LE(BPF_RET_K, 0);
  insn.writeUInt32LE(SECCOMP_RET_ALLOW, 4);
  return insn;
}

export function defaultSeccompProfile(): OciSeccompProfile {
  return { defaultAction: 'SCMP_ACT_ALLOW' };
}
