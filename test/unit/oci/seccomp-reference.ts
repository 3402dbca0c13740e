// What a profile means, evaluated directly on one call (docs/seccomp.md), to compare the compiled
// filter with: arch and x32 checks, then the profile's entries in order, first match wins.
import { I386_SYSCALLS, X32_SYSCALLS, X86_64_SYSCALLS } from '../../../src/oci/seccomp/syscall-table.js';

export const AUDIT_X86_64 = 0xc000003e;
export const AUDIT_I386 = 0x40000003;
export const AUDIT_AARCH64 = 0xc00000b7;
export const KILL_PROCESS = 0x80000000;

const RET: Record<string, number> = {
  SCMP_ACT_KILL: 0, SCMP_ACT_KILL_THREAD: 0, SCMP_ACT_KILL_PROCESS: 0x80000000, SCMP_ACT_TRAP: 0x30000,
  SCMP_ACT_ERRNO: 0x50000, SCMP_ACT_TRACE: 0x7ff00000, SCMP_ACT_LOG: 0x7ffc0000, SCMP_ACT_ALLOW: 0x7fff0000,
};

export interface RefArg { index: number; value: number | string | bigint; valueTwo?: number | string | bigint; op: string }
export interface RefEntry { names: string[]; action: string; errnoRet?: number; args?: RefArg[] }
export interface RefProfile { defaultAction: string; defaultErrnoRet?: number; architectures?: string[]; syscalls?: RefEntry[] }

export function retOf(action: string, errnoRet: number | undefined): number {
  const base = RET[action]!;
  return action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE' ? (base + (errnoRet ?? 1)) >>> 0 : base;
}

function holds(arg: RefArg, actual: bigint): boolean {
  const v = BigInt(arg.value), w = BigInt(arg.valueTwo ?? 0);
  switch (arg.op) {
    case 'SCMP_CMP_NE': return actual !== v;
    case 'SCMP_CMP_LT': return actual < v;
    case 'SCMP_CMP_LE': return actual <= v;
    case 'SCMP_CMP_EQ': return actual === v;
    case 'SCMP_CMP_GE': return actual >= v;
    case 'SCMP_CMP_GT': return actual > v;
    case 'SCMP_CMP_MASKED_EQ': return (actual & v) === w;
    default: throw new Error(`op ${arg.op}`);
  }
}

/** runc: all comparisons hold; but when an index repeats, any one comparison is enough. */
function matches(args: RefArg[], actual: readonly bigint[]): boolean {
  const indexes = args.map((a) => a.index);
  const repeated = new Set(indexes).size !== indexes.length;
  const results = args.map((a) => holds(a, actual[a.index] ?? 0n));
  return repeated ? results.some(Boolean) : results.every(Boolean);
}

export function expectedAction(p: RefProfile, arch: number, nr: number, args: readonly bigint[]): number {
  const archs = new Set(p.architectures ?? []);
  let table: Readonly<Record<string, number>>;
  if (arch === AUDIT_X86_64 && nr < 0x40000000) table = X86_64_SYSCALLS;
  else if (arch === AUDIT_X86_64 && archs.has('SCMP_ARCH_X32')) table = X32_SYSCALLS;
  else if (arch === AUDIT_I386 && archs.has('SCMP_ARCH_X86')) table = I386_SYSCALLS;
  else return KILL_PROCESS;
  for (const entry of p.syscalls ?? []) {
    if (!entry.names.some((n) => table[n] === nr)) continue;
    if (matches(entry.args ?? [], args)) return retOf(entry.action, entry.errnoRet);
  }
  return retOf(p.defaultAction, p.defaultErrnoRet);
}
