// The OCI runtime-spec `linux.seccomp` object (LinuxSeccomp), checked field by field: what this
// compiler honours passes, what it cannot honour is refused with the reason (docs/seccomp.md).
import { z } from 'zod';
import { VcError } from '../../errors.js';
import { describeInput } from '../../model/config-errors.js';

/** SECCOMP_RET_* values (linux/seccomp.h); the low 16 bits carry an errno or a tracer's message. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

const EPERM = 1;
const MAX_ERRNO = 4095;

/** SCMP_ACT_* names and their return values; ERRNO and TRACE add errnoRet. */
export const ACTIONS = {
  SCMP_ACT_KILL: SECCOMP_RET.KILL_THREAD, // libseccomp's SCMP_ACT_KILL is the thread kind
  SCMP_ACT_KILL_THREAD: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: SECCOMP_RET.KILL_PROCESS,
  SCMP_ACT_TRAP: SECCOMP_RET.TRAP,
  SCMP_ACT_ERRNO: SECCOMP_RET.ERRNO,
  SCMP_ACT_TRACE: SECCOMP_RET.TRACE,
  SCMP_ACT_ALLOW: SECCOMP_RET.ALLOW,
  SCMP_ACT_LOG: SECCOMP_RET.LOG,
} as const;
export type SeccompActionName = keyof typeof ACTIONS;

const REFUSED_ACTIONS: Record<string, string> = {
  SCMP_ACT_NOTIFY: 'is not supported: no seccomp user-notification agent listens in the guest',
};

export const ARCHITECTURES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'] as const;
export type SeccompArch = (typeof ARCHITECTURES)[number];

/** SECCOMP_FILTER_FLAG_* (linux/seccomp.h). */
export const FILTER_FLAGS = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 8,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 16,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
} as const;
/** Passed to seccomp(2) as given. TSYNC is accepted but not passed: the filter is installed by a
 *  single-threaded process just before execve, so there are no other threads to synchronise. */
export const HONOURED_FLAGS = ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] as const;
const REFUSED_FLAGS: Record<string, string> = {
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 'is not supported: there is no seccomp user-notification agent',
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 'only matters with a notification listener, which is not supported',
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 'only matters with a notification listener, which is not supported',
};

export const OPERATORS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'] as const;
export type SeccompOperator = (typeof OPERATORS)[number];

const U64_MAX = (1n << 64n) - 1n;

function custom(ctx: z.RefinementCtx, input: unknown, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message, input });
  return z.NEVER;
}

/** A comparison value: an unsigned 64-bit number as a JSON number (exact only up to 2^53), a
 *  decimal string or a bigint, so that values like 0xffffffffffffffff can be given exactly. */
const u64 = z.unknown().transform((input, ctx): bigint => {
  let value: bigint;
  if (typeof input === 'bigint') value = input;
  else if (typeof input === 'number') {
    if (!Number.isInteger(input)) return custom(ctx, input, 'must be an unsigned 64-bit integer');
    if (!Number.isSafeInteger(input)) return custom(ctx, input, 'is above 2^53 and so not exact as a JSON number; give it as a decimal string');
    value = BigInt(input);
  } else if (typeof input === 'string' && /^\d{1,20}$/.test(input)) value = BigInt(input);
  else return custom(ctx, input, 'must be an unsigned 64-bit integer (a number, or a decimal string)');
  if (value < 0n || value > U64_MAX) return custom(ctx, input, 'must be between 0 and 2^64-1');
  return value;
});

function named<T extends string>(known: readonly T[], refused: Record<string, string>, what: string) {
  return z.unknown().transform((input, ctx): T => {
    if (typeof input === 'string' && refused[input]) return custom(ctx, input, refused[input]!);
    if (typeof input === 'string' && (known as readonly string[]).includes(input)) return input as T;
    return custom(ctx, input, `${what}: ${known.join(', ')}`);
  });
}

const action = named(Object.keys(ACTIONS) as SeccompActionName[], REFUSED_ACTIONS, 'must be one of the actions');
const errnoRet = z.number().int().min(0).max(0xffff);

const argSchema = z.strictObject({
  index: z.number().int().min(0).max(5),
  value: u64,
  valueTwo: u64.optional(),
  op: named(OPERATORS, {}, 'must be one of the operators'),
});

const syscallSchema = z.strictObject({
  names: z.array(z.string().regex(/^[a-z0-9_]+$/, 'must be a system call name')).min(1),
  action,
  errnoRet: errnoRet.optional(),
  args: z.array(argSchema).optional(),
}).superRefine((s, ctx) => checkErrnoRet(s.action, s.errnoRet, ctx, 'errnoRet'));

function checkErrnoRet(act: SeccompActionName, ret: number | undefined, ctx: z.RefinementCtx, key: string): void {
  if (ret === undefined) return;
  if (act !== 'SCMP_ACT_ERRNO' && act !== 'SCMP_ACT_TRACE') {
    ctx.addIssue({ code: 'custom', path: [key], input: ret, message: `is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${act}` });
  } else if (act === 'SCMP_ACT_ERRNO' && ret > MAX_ERRNO) {
    ctx.addIssue({ code: 'custom', path: [key], input: ret, message: `must be an errno, at most ${MAX_ERRNO}` });
  }
}

export const seccompProfileSchema = z.strictObject({
  defaultAction: action,
  defaultErrnoRet: errnoRet.optional(),
  architectures: z.array(named(ARCHITECTURES, {}, 'is not an architecture this x86_64 runtime runs; give one of')).optional(),
  flags: z.array(named(Object.keys(FILTER_FLAGS) as SeccompFlagName[], REFUSED_FLAGS, 'must be one of the flags')).optional(),
  listenerPath: z.unknown().refine((v) => v === undefined || v === '', 'is not supported: there is no seccomp user-notification agent').optional(),
  listenerMetadata: z.unknown().refine((v) => v === undefined || v === '', 'is not supported: there is no seccomp user-notification agent').optional(),
  syscalls: z.array(syscallSchema).optional(),
}).superRefine((p, ctx) => checkErrnoRet(p.defaultAction, p.defaultErrnoRet, ctx, 'defaultErrnoRet'));

export type SeccompFlagName = keyof typeof FILTER_FLAGS;

/** A profile as given: the OCI LinuxSeccomp JSON shape. Comparison values may also be decimal
 *  strings or bigints, for values above 2^53. */
export interface OciSeccompProfile {
  defaultAction: SeccompActionName;
  defaultErrnoRet?: number;
  architectures?: SeccompArch[];
  flags?: SeccompFlagName[];
  syscalls?: OciSeccompSyscall[];
}
export interface OciSeccompSyscall {
  names: string[];
  action: SeccompActionName;
  errnoRet?: number;
  args?: OciSeccompArg[];
}
export interface OciSeccompArg {
  index: number;
  value: number | string | bigint;
  valueTwo?: number | string | bigint;
  op: SeccompOperator;
}
export type ParsedSeccompProfile = z.output<typeof seccompProfileSchema>;

/** The SECCOMP_RET_* value of an action: ERRNO gets errnoRet or EPERM, TRACE errnoRet or EPERM
 *  (runc's choice for the tracer's message). */
export function actionValue(act: SeccompActionName, ret: number | undefined): number {
  const base = ACTIONS[act];
  if (act === 'SCMP_ACT_ERRNO' || act === 'SCMP_ACT_TRACE') return (base | (ret ?? EPERM)) >>> 0;
  return base;
}

export function parseSeccompProfile(input: unknown, field: string): ParsedSeccompProfile {
  const result = seccompProfileSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new VcError('INVALID_CONFIG', `invalid ${field}: ${describeInput(result.error.issues, [field])}`, { cause: result.error });
}
