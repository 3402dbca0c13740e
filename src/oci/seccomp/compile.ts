// OCI seccomp profile -> classic BPF over struct seccomp_data, for an x86_64 kernel:
//   check the audit arch (x86_64, and i386 when SCMP_ARCH_X86 is listed; anything else is killed),
//   on x86_64 send x32 calls (nr >= 0x40000000) to the x32 rules when SCMP_ARCH_X32 is listed,
//   else kill them; then a binary search on the call number reaches the call's rules, tried in the
//   profile's order (first match wins), falling back to the default action.
// Arguments are 64-bit and compared unsigned, as two 32-bit halves: seccomp_data.args[i] sits at
// offset 16 + 8i, low word first (little-endian).
import { VcError } from '../../errors.js';
import { Assembler, BPF_MAXINSNS, encode, type Label } from './bpf.js';
import {
  FILTER_FLAGS, HONOURED_FLAGS, SECCOMP_RET, actionValue, parseSeccompProfile,
  type ParsedSeccompProfile, type SeccompArch, type SeccompOperator,
} from './profile.js';
import { I386_SYSCALLS, OTHER_ARCH_SYSCALLS, X32_SYSCALLS, X86_64_SYSCALLS } from './syscall-table.js';

/** AUDIT_ARCH_* (linux/audit.h): EM_X86_64 / EM_386 with the 64-bit and little-endian bits. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const X32_SYSCALL_BIT = 0x40000000;
/** Calls of an architecture the profile does not list: killed, like libseccomp's bad-arch action,
 *  but the whole process (a thread killed alone leaves its process half-working). */
export const BAD_ARCH_ACTION = SECCOMP_RET.KILL_PROCESS;

const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argLow = (index: number) => 16 + 8 * index;
const argHigh = (index: number) => 16 + 8 * index + 4;

export interface Condition { index: number; op: SeccompOperator; value: bigint; valueTwo: bigint }
/** One rule: every condition holds -> action (a SECCOMP_RET_* value). */
export interface Rule { action: number; conditions: Condition[] }

export interface CompiledSeccomp {
  /** struct sock_filter[] bytes for seccomp(SECCOMP_SET_MODE_FILTER). */
  filter: Buffer;
  /** SECCOMP_FILTER_FLAG_* bits to pass to seccomp(2) (only the honoured ones). */
  flags: number;
  /** Names skipped because they are no system call of any architecture known here. */
  warnings: string[];
}

interface Abi { arch: SeccompArch; table: Readonly<Record<string, number>>; low: number; high: number }
const ABIS: Record<SeccompArch, Abi> = {
  SCMP_ARCH_X86_64: { arch: 'SCMP_ARCH_X86_64', table: X86_64_SYSCALLS, low: 0, high: X32_SYSCALL_BIT - 1 },
  SCMP_ARCH_X32: { arch: 'SCMP_ARCH_X32', table: X32_SYSCALLS, low: X32_SYSCALL_BIT, high: 0xffffffff },
  SCMP_ARCH_X86: { arch: 'SCMP_ARCH_X86', table: I386_SYSCALLS, low: 0, high: 0xffffffff },
};
const KNOWN_ELSEWHERE = new Set(OTHER_ARCH_SYSCALLS);

/** runc's reading of an entry's args: all of them must hold, except that when one argument index
 *  is compared more than once, each comparison becomes a rule of its own (any one may hold). */
export function entryRules(action: number, args: readonly Condition[]): Rule[] {
  const indexes = args.map((a) => a.index);
  if (new Set(indexes).size === indexes.length) return [{ action, conditions: [...args] }];
  return args.map((a) => ({ action, conditions: [a] }));
}

/** Per call number, the rules of one ABI in the profile's order. */
function rulesOf(profile: ParsedSeccompProfile, abi: Abi): Map<number, Rule[]> {
  const byNumber = new Map<number, Rule[]>();
  for (const entry of profile.syscalls ?? []) {
    const action = actionValue(entry.action, entry.errnoRet);
    const conditions = (entry.args ?? []).map((a) => ({ index: a.index, op: a.op, value: a.value, valueTwo: a.valueTwo ?? 0n }));
    const numbers = new Set(entry.names.map((n) => abi.table[n]).filter((nr): nr is number => nr !== undefined));
    for (const nr of numbers) {
      const list = byNumber.get(nr) ?? [];
      list.push(...entryRules(action, conditions));
      byNumber.set(nr, list);
    }
  }
  return byNumber;
}

/** The rules that can change the outcome: none after an unconditional one, none at the end that
 *  only give the default action anyway. */
function reachable(rules: Rule[], defaultAction: number): Rule[] {
  const firstAlways = rules.findIndex((r) => r.conditions.length === 0);
  const kept = firstAlways >= 0 ? rules.slice(0, firstAlways + 1) : [...rules];
  while (kept.length > 0 && kept[kept.length - 1]!.action === defaultAction) kept.pop();
  return kept;
}

class Codegen {
  readonly asm = new Assembler();
  private readonly returns = new Map<number, Label>();
  private readonly handlers = new Map<string, { label: Label; rules: Rule[] }>();

  constructor(private readonly defaultAction: number) {}

  /** The label of a shared `ret value`, placed at the end. */
  returnOf(value: number): Label {
    let label = this.returns.get(value >>> 0);
    if (label === undefined) this.returns.set(value >>> 0, label = this.asm.newLabel());
    return label;
  }

  /** Where the rules of a call start; calls with the same rules share their code. */
  handlerOf(rules: Rule[]): Label {
    if (rules.length === 0) return this.returnOf(this.defaultAction);
    if (rules[0]!.conditions.length === 0) return this.returnOf(rules[0]!.action);
    const key = JSON.stringify(rules, (_k, v) => typeof v === 'bigint' ? v.toString() : v);
    let handler = this.handlers.get(key);
    if (!handler) this.handlers.set(key, handler = { label: this.asm.newLabel(), rules });
    return handler.label;
  }

  /** A binary search on the call number (in A) over [abi.low, abi.high], then on to the handlers. */
  dispatch(entry: Label, abi: Abi, rules: Map<number, Rule[]>): void {
    // Intervals of numbers that share one handler: [start, next start).
    const points = [...rules.keys()].filter((nr) => nr >= abi.low && nr <= abi.high).sort((a, b) => a - b);
    const intervals: Array<{ start: number; target: Label }> = [];
    const add = (start: number, target: Label) => {
      if (intervals.length > 0 && intervals[intervals.length - 1]!.target === target) return;
      intervals.push({ start, target });
    };
    let next = abi.low;
    for (const nr of points) {
      if (nr > next) add(next, this.returnOf(this.defaultAction));
      add(nr, this.handlerOf(reachable(rules.get(nr)!, this.defaultAction)));
      next = nr + 1;
    }
    if (next <= abi.high) add(next, this.returnOf(this.defaultAction));
    this.search(entry, intervals, 0, intervals.length - 1);
  }

  private search(entry: Label, intervals: Array<{ start: number; target: Label }>, lo: number, hi: number): void {
    if (lo === hi) {
      this.asm.place(entry);
      this.asm.goto(intervals[lo]!.target);
      return;
    }
    const mid = (lo + hi + 1) >> 1;
    const subtree = (from: number, to: number): { label: Label; build: boolean } =>
      from === to ? { label: intervals[from]!.target, build: false } : { label: this.asm.newLabel(), build: true };
    const left = subtree(lo, mid - 1);
    const right = subtree(mid, hi);
    this.asm.place(entry);
    this.asm.jump('jge', intervals[mid]!.start, right.label, left.label);
    if (left.build) this.search(left.label, intervals, lo, mid - 1);
    if (right.build) this.search(right.label, intervals, mid, hi);
  }

  /** The rule chains of every handler, then the shared returns. */
  finish(): void {
    for (const { label, rules } of this.handlers.values()) {
      this.asm.place(label);
      rules.forEach((rule, i) => {
        const nextRule = i + 1 < rules.length ? this.asm.newLabel() : this.returnOf(this.defaultAction);
        // Only the last rule can be unconditional (reachable() cut the rest).
        if (rule.conditions.length === 0) this.asm.goto(this.returnOf(rule.action));
        rule.conditions.forEach((c, j) => {
          const pass = j + 1 < rule.conditions.length ? this.asm.newLabel() : this.returnOf(rule.action);
          this.condition(c, pass, nextRule);
          if (j + 1 < rule.conditions.length) this.asm.place(pass);
        });
        if (i + 1 < rules.length) this.asm.place(nextRule);
      });
    }
    for (const [value, label] of this.returns) {
      this.asm.place(label);
      this.asm.ret(value);
    }
  }

  /** Jumps to `pass` when the condition holds, else to `fail`; the high words decide first. */
  private condition(c: Condition, pass: Label, fail: Label): void {
    const a = this.asm;
    const hi = Number(c.value >> 32n), lo = Number(c.value & 0xffffffffn);
    const checkLow = a.newLabel();
    switch (c.op) {
      case 'SCMP_CMP_EQ':
        a.load(argHigh(c.index)); a.jump('jeq', hi, checkLow, fail);
        a.place(checkLow); a.load(argLow(c.index)); a.jump('jeq', lo, pass, fail);
        break;
      case 'SCMP_CMP_NE':
        a.load(argHigh(c.index)); a.jump('jeq', hi, checkLow, pass);
        a.place(checkLow); a.load(argLow(c.index)); a.jump('jeq', lo, fail, pass);
        break;
      case 'SCMP_CMP_MASKED_EQ': {
        const mhi = Number(c.value >> 32n), mlo = Number(c.value & 0xffffffffn);
        const whi = Number(c.valueTwo >> 32n), wlo = Number(c.valueTwo & 0xffffffffn);
        a.load(argHigh(c.index)); a.and(mhi); a.jump('jeq', whi, checkLow, fail);
        a.place(checkLow); a.load(argLow(c.index)); a.and(mlo); a.jump('jeq', wlo, pass, fail);
        break;
      }
      case 'SCMP_CMP_GT':
      case 'SCMP_CMP_GE': {
        // high > v.high: holds; high == v.high: the low words decide; else fails.
        const equalHigh = a.newLabel();
        a.load(argHigh(c.index)); a.jump('jgt', hi, pass, equalHigh);
        a.place(equalHigh); a.jump('jeq', hi, checkLow, fail);
        a.place(checkLow); a.load(argLow(c.index)); a.jump(c.op === 'SCMP_CMP_GT' ? 'jgt' : 'jge', lo, pass, fail);
        break;
      }
      case 'SCMP_CMP_LT':
      case 'SCMP_CMP_LE': {
        // high > v.high: fails; high == v.high: the low words decide; else holds.
        const notAbove = a.newLabel();
        a.load(argHigh(c.index)); a.jump('jgt', hi, fail, notAbove);
        a.place(notAbove); a.jump('jeq', hi, checkLow, pass);
        a.place(checkLow); a.load(argLow(c.index)); a.jump(c.op === 'SCMP_CMP_LT' ? 'jge' : 'jgt', lo, fail, pass);
        break;
      }
    }
  }
}

/** Warnings for the names no architecture known here has (they are skipped like the others). */
function unknownNames(profile: ParsedSeccompProfile, field: string): string[] {
  const warnings: string[] = [];
  (profile.syscalls ?? []).forEach((entry, i) => entry.names.forEach((name, j) => {
    const known = Object.values(ABIS).some((abi) => abi.table[name] !== undefined) || KNOWN_ELSEWHERE.has(name);
    if (!known) warnings.push(`${field}.syscalls.${i}.names.${j}: "${name}" is no system call of any architecture known here; skipped`);
  }));
  return warnings;
}

export function compileSeccompWithFlags(input: unknown, field: string): CompiledSeccomp {
  const profile = parseSeccompProfile(input, field);
  const defaultAction = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const listed = new Set<SeccompArch>(profile.architectures ?? []);
  const gen = new Codegen(defaultAction);
  const a = gen.asm;
  const badArch = gen.returnOf(BAD_ARCH_ACTION);

  // The native ABI is always filtered, as libseccomp's native arch is; x32 and i386 when listed.
  const x86_64 = a.newLabel(), notX86_64 = a.newLabel(), dispatch64 = a.newLabel();
  const x32 = listed.has('SCMP_ARCH_X32') ? a.newLabel() : badArch;
  a.load(OFFSET_ARCH);
  a.jump('jeq', AUDIT_ARCH_X86_64, x86_64, notX86_64);
  a.place(x86_64);
  a.load(OFFSET_NR);
  a.jump('jge', X32_SYSCALL_BIT, x32, dispatch64);
  gen.dispatch(dispatch64, ABIS.SCMP_ARCH_X86_64, rulesOf(profile, ABIS.SCMP_ARCH_X86_64));
  if (listed.has('SCMP_ARCH_X32')) gen.dispatch(x32, ABIS.SCMP_ARCH_X32, rulesOf(profile, ABIS.SCMP_ARCH_X32));
  a.place(notX86_64);
  if (listed.has('SCMP_ARCH_X86')) {
    const i386 = a.newLabel(), dispatch32 = a.newLabel();
    a.jump('jeq', AUDIT_ARCH_I386, i386, badArch);
    a.place(i386);
    a.load(OFFSET_NR);
    gen.dispatch(dispatch32, ABIS.SCMP_ARCH_X86, rulesOf(profile, ABIS.SCMP_ARCH_X86));
  } else {
    a.goto(badArch);
  }
  gen.finish();

  const program = a.assemble();
  if (program.length > BPF_MAXINSNS) {
    throw new VcError('INVALID_CONFIG', `invalid ${field}: the profile compiles to ${program.length} BPF instructions, more than the kernel's limit of ${BPF_MAXINSNS}; use fewer argument rules`);
  }
  const flags = (profile.flags ?? []).filter((f) => (HONOURED_FLAGS as readonly string[]).includes(f)).reduce((m, f) => m | FILTER_FLAGS[f], 0);
  return { filter: encode(program), flags, warnings: unknownNames(profile, field) };
}
