// The compiled filters, run by an independent cBPF interpreter (cbpf.ts) on many calls and compared
// with what the profile means (seccomp-reference.ts): the default profile by hand, every operator
// at its 32/64-bit boundaries, randomized profiles, far jumps, the size limit, and a
// containerd-style allow-list.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VcError } from '../../../src/errors.js';
import { Assembler, encode } from '../../../src/oci/seccomp/bpf.js';
import { compileSeccomp, compileSeccompWithFlags, defaultSeccompProfile } from '../../../src/oci/seccomp/index.js';
import { I386_SYSCALLS, X32_SYSCALLS, X86_64_SYSCALLS } from '../../../src/oci/seccomp/syscall-table.js';
import { prng } from '../../helpers/prng.js';
import { decode, run } from './cbpf.js';
import {
  AUDIT_AARCH64, AUDIT_I386, AUDIT_X86_64, KILL_PROCESS, expectedAction,
  type RefArg, type RefEntry, type RefProfile,
} from './seccomp-reference.js';

const FIELD = 'seccomp';
const ALLOW = 0x7fff0000;
const errno = (e: number) => 0x50000 + e;
const EPERM = errno(1);

function verdict(filter: Buffer, arch: number, nr: number, args: bigint[] = []): number {
  return run(filter, { nr, arch, args }).result;
}

test('default profile: the deny-list, namespace flags, personality, vsock, by hand', () => {
  const f = compileSeccomp(defaultSeccompProfile(), FIELD);
  const x64 = (name: string, ...args: bigint[]) => verdict(f, AUDIT_X86_64, X86_64_SYSCALLS[name]!, args);
  const i386 = (name: string, ...args: bigint[]) => verdict(f, AUDIT_I386, I386_SYSCALLS[name]!, args);
  const x32 = (name: string, ...args: bigint[]) => verdict(f, AUDIT_X86_64, X32_SYSCALLS[name]!, args);
  for (const name of ['read', 'write', 'execve', 'openat', 'ptrace', 'chroot', 'futex', 'cachestat']) assert.is(x64(name), ALLOW, name);
  for (const name of ['mount', 'umount2', 'pivot_root', 'setns', 'bpf', 'init_module', 'kexec_load', 'reboot', 'keyctl', 'open_by_handle_at', 'iopl', 'syslog', 'userfaultfd', 'io_uring_setup', 'fsopen', 'clock_settime']) {
    assert.is(x64(name), EPERM, name);
  }
  assert.is(x64('clone', 0x11n /* SIGCHLD */), ALLOW);
  assert.is(x64('clone', 0x3d0f00n /* a pthread's flags */), ALLOW);
  assert.is(x64('clone', 0x10000011n /* CLONE_NEWUSER|SIGCHLD */), EPERM);
  assert.is(x64('clone', 0x40000000n /* CLONE_NEWNET */), EPERM);
  assert.is(x64('unshare', 0x200n /* CLONE_FS */), ALLOW);
  assert.is(x64('unshare', 0x10000000n), EPERM);
  assert.is(x64('unshare', 0x80n /* CLONE_NEWTIME */), EPERM);
  assert.is(x64('clone3'), errno(38), 'ENOSYS, so libc falls back to clone');
  assert.is(x64('personality', 0n), ALLOW);
  assert.is(x64('personality', 0xffffffffn), ALLOW);
  assert.is(x64('personality', 0x40000n), ALLOW);
  assert.is(x64('personality', 0x100000000n), ALLOW, 'the upper half is not the kernel\'s argument');
  assert.is(x64('personality', 0x400000n /* READ_IMPLIES_EXEC */), EPERM);
  assert.is(x64('personality', 0x100000n /* MMAP_PAGE_ZERO */), EPERM);
  assert.is(x64('socket', 40n /* AF_VSOCK */), EPERM);
  assert.is(x64('socket', (1n << 32n) + 40n), EPERM, 'upper bits do not hide AF_VSOCK');
  assert.is(x64('socket', 2n /* AF_INET */), ALLOW);
  assert.is(i386('read'), ALLOW);
  assert.is(i386('mount'), EPERM);
  assert.is(i386('umount'), EPERM);
  assert.is(i386('vm86old'), EPERM);
  assert.is(i386('unshare', 0x10000000n), EPERM);
  assert.is(i386('socketcall'), ALLOW);
  assert.is(x32('read'), ALLOW);
  assert.is(x32('rt_sigaction'), ALLOW);
  assert.is(x32('mount'), EPERM);
  assert.is(verdict(f, AUDIT_AARCH64, 0), KILL_PROCESS, 'an architecture the profile does not list is killed');
  assert.is(verdict(f, 0, 0), KILL_PROCESS);
});

test('default profile equals its meaning on every number of every ABI', () => {
  const profile = defaultSeccompProfile() as RefProfile;
  const f = compileSeccomp(profile, FIELD);
  const argSets = [[], [0x10000000n], [0x11n], [40n], [0xffffffffn], [0x400000n], [0xffffffffffffffffn]];
  let checked = 0;
  for (const args of argSets) {
    for (let nr = 0; nr < 600; nr++) {
      for (const [arch, n] of [[AUDIT_X86_64, nr], [AUDIT_I386, nr], [AUDIT_X86_64, 0x40000000 + nr]] as const) {
        assert.is(verdict(f, arch, n, args), expectedAction(profile, arch, n, args), `arch ${arch.toString(16)} nr ${n} args ${args}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 10000);
});

const EDGES = [0n, 1n, 2n, 0x7fffffffn, 0xfffffffen, 0xffffffffn, 0x100000000n, 0x100000001n, 0x1ffffffffn, 0xffffffff00000000n, 1n << 63n, (1n << 64n) - 2n, (1n << 64n) - 1n, 0x123456789abcdefn];
const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];
const u64 = (v: bigint) => BigInt.asUintN(64, v);

/** Values next to v: v-1, v, v+1 and v with either half moved by one. */
function around(v: bigint): bigint[] {
  return [v - 1n, v, v + 1n, v + (1n << 32n), v - (1n << 32n), v ^ 1n, v ^ (1n << 32n)].map(u64);
}

test('every operator on 64-bit values, at the edges of both halves', () => {
  let checked = 0;
  for (const op of OPS) {
    for (const value of EDGES) {
      for (const valueTwo of op === 'SCMP_CMP_MASKED_EQ' ? [0n, value, value & 0xffff0000ffffn, 1n] : [0n]) {
        for (const index of [0, 3, 5]) {
          const profile: RefProfile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index, op, value: value.toString(), valueTwo: valueTwo.toString() }] }] };
          const f = compileSeccomp(profile, FIELD);
          for (const actual of [...around(value), ...around(valueTwo), ...EDGES]) {
            const args = [0n, 0n, 0n, 0n, 0n, 0n];
            args[index] = actual;
            const got = verdict(f, AUDIT_X86_64, X86_64_SYSCALLS.ioctl!, args);
            assert.is(got, expectedAction(profile, AUDIT_X86_64, X86_64_SYSCALLS.ioctl!, args), `${op} ${value} (${valueTwo}) on arg ${index} = ${actual}`);
            checked++;
          }
        }
      }
    }
  }
  assert.ok(checked > 5000, `${checked}`);
});

test('rules of one call are tried in order; a repeated index makes each comparison a rule (runc)', () => {
  const profile: RefProfile = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 9, syscalls: [
    { names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, op: 'SCMP_CMP_EQ', value: 0 }] },
    { names: ['kill', 'tkill'], action: 'SCMP_ACT_ERRNO', errnoRet: 3, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1 }] },
    { names: ['kill'], action: 'SCMP_ACT_LOG' },
    { names: ['kill'], action: 'SCMP_ACT_TRAP' },
    { names: ['tkill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 5 }, { index: 0, op: 'SCMP_CMP_EQ', value: 6 }] },
  ] };
  const f = compileSeccomp(profile, FIELD);
  const kill = (...a: bigint[]) => verdict(f, AUDIT_X86_64, X86_64_SYSCALLS.kill!, a);
  const tkill = (...a: bigint[]) => verdict(f, AUDIT_X86_64, X86_64_SYSCALLS.tkill!, a);
  assert.is(kill(1n, 0n), ALLOW);
  assert.is(kill(1n, 9n), errno(3));
  assert.is(kill(2n, 9n), 0x7ffc0000, 'LOG, the first unconditional rule; TRAP after it is unreachable');
  assert.is(tkill(5n), ALLOW);
  assert.is(tkill(6n), ALLOW, 'index 0 twice: either comparison is enough');
  assert.is(tkill(7n), errno(9), 'the default with defaultErrnoRet');
  assert.is(tkill(1n), errno(3));
  assert.is(verdict(f, AUDIT_X86_64, X86_64_SYSCALLS.read!), errno(9));
  assert.is(verdict(f, AUDIT_I386, I386_SYSCALLS.read!), KILL_PROCESS, 'i386 is not listed');
  assert.is(verdict(f, AUDIT_X86_64, X32_SYSCALLS.read!), KILL_PROCESS, 'x32 is not listed');
});

test('actions and their return values', () => {
  const cases: Array<[RefEntry, number]> = [
    [{ names: ['read'], action: 'SCMP_ACT_KILL' }, 0],
    [{ names: ['read'], action: 'SCMP_ACT_KILL_THREAD' }, 0],
    [{ names: ['read'], action: 'SCMP_ACT_KILL_PROCESS' }, 0x80000000],
    [{ names: ['read'], action: 'SCMP_ACT_TRAP' }, 0x30000],
    [{ names: ['read'], action: 'SCMP_ACT_ERRNO' }, 0x50001],
    [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 0 }, 0x50000],
    [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 4095 }, 0x50fff],
    [{ names: ['read'], action: 'SCMP_ACT_TRACE' }, 0x7ff00001],
    [{ names: ['read'], action: 'SCMP_ACT_TRACE', errnoRet: 0xabcd }, 0x7ff0abcd],
    [{ names: ['read'], action: 'SCMP_ACT_LOG' }, 0x7ffc0000],
  ];
  for (const [entry, ret] of cases) {
    const f = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [entry] }, FIELD);
    assert.is(verdict(f, AUDIT_X86_64, 0), ret, JSON.stringify(entry));
    assert.is(verdict(f, AUDIT_X86_64, 1), ALLOW);
  }
  const f = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO' }, FIELD);
  assert.is(verdict(f, AUDIT_X86_64, 0), errno(1), 'default ERRNO without defaultErrnoRet: EPERM');
});

// Names for random profiles: x86_64 ones, i386-only, x32-only numbers, other-arch and unknown.
const NAME_POOL = [
  ...Object.keys(X86_64_SYSCALLS).filter((_, i) => i % 9 === 0),
  'read', 'write', 'ioctl', 'clone', 'personality', 'socketcall', '_llseek', 'waitpid', 'rt_sigaction', 'execve',
  'arm_fadvise64_64', 'nope_call',
];
const ACTIONS = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG'];

function randomProfile(rand: () => number): RefProfile {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const value = (): bigint => rand() < 0.6 ? pick(EDGES) : BigInt(Math.floor(rand() * 2 ** 32)) << 32n | BigInt(Math.floor(rand() * 2 ** 32));
  const action = (): { action: string; errnoRet?: number } => {
    const a = pick(ACTIONS);
    return a === 'SCMP_ACT_ERRNO' || a === 'SCMP_ACT_TRACE' ? (rand() < 0.5 ? { action: a, errnoRet: Math.floor(rand() * 200) } : { action: a }) : { action: a };
  };
  const archs = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'].filter(() => rand() < 0.5);
  const big = rand() < 0.15; // many argument rules on few calls: long rule chains, far jumps
  const syscalls: RefEntry[] = Array.from({ length: big ? 150 : Math.floor(rand() * 40) }, () => ({
    names: Array.from({ length: 1 + Math.floor(rand() * 3) }, () => big ? pick(['read', 'ioctl', 'write']) : pick(NAME_POOL)),
    ...action(),
    args: Array.from({ length: Math.floor(rand() * (big ? 4 : 3)) }, (): RefArg => ({ index: Math.floor(rand() * 6), op: pick(OPS), value: value().toString(), valueTwo: value().toString() })),
  }));
  const fallback = action();
  return { defaultAction: fallback.action, ...(fallback.errnoRet !== undefined ? { defaultErrnoRet: fallback.errnoRet } : {}), architectures: archs, syscalls };
}

function randomCall(rand: () => number, profile: RefProfile): { arch: number; nr: number; args: bigint[] } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const r = rand();
  const arch = r < 0.65 ? AUDIT_X86_64 : r < 0.8 ? AUDIT_I386 : r < 0.95 ? AUDIT_X86_64 : pick([AUDIT_AARCH64, 0, 0xffffffff]);
  const table = r < 0.65 ? X86_64_SYSCALLS : r < 0.8 ? I386_SYSCALLS : X32_SYSCALLS;
  const named = (profile.syscalls ?? []).flatMap((e) => e.names).map((n) => table[n]).filter((n): n is number => n !== undefined);
  const nr = named.length > 0 && rand() < 0.8 ? pick(named) : rand() < 0.5 ? Math.floor(rand() * 600) : Math.floor(rand() * 2 ** 32);
  const values = (profile.syscalls ?? []).flatMap((e) => e.args ?? []).flatMap((a) => [BigInt(a.value), BigInt(a.valueTwo ?? 0), BigInt(a.value) & BigInt(a.valueTwo ?? 0)]);
  const args = Array.from({ length: 6 }, () => values.length > 0 && rand() < 0.7 ? pick(around(pick(values))) : pick(EDGES));
  return { arch, nr, args };
}

test('randomized profiles: the filter equals the profile\'s meaning (seeded)', () => {
  let calls = 0, large = 0, longest = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rand = prng(seed);
    const profile = randomProfile(rand);
    const filter = compileSeccomp(profile, FIELD);
    const program = decode(filter);
    longest = Math.max(longest, program.length);
    if (program.length > 300) large++; // long enough for jumps over 255 instructions
    for (let i = 0; i < 200; i++) {
      const { arch, nr, args } = randomCall(rand, profile);
      const got = run(filter, { arch, nr, args }).result;
      const want = expectedAction(profile, arch, nr, args);
      if (got !== want) assert.unreachable(`seed ${seed}: arch ${arch.toString(16)} nr ${nr} args ${args.join(',')}: filter 0x${got.toString(16)}, profile 0x${want.toString(16)}\n${JSON.stringify(profile)}`);
      calls++;
    }
  }
  console.log(`  ${calls} calls on 300 profiles; ${large} of them over 300 instructions, the longest ${longest}`);
  assert.ok(large > 10, `only ${large} profiles long enough for far jumps`);
});

test('assembler: a conditional jump further than 255 instructions goes through a ja right behind it', () => {
  const asm = new Assembler();
  const far = asm.newLabel(), near = asm.newLabel(), both = asm.newLabel();
  asm.load(0);
  asm.jump('jeq', 7, far, near); // jt far: one trampoline; jf near: past it
  asm.place(near);
  for (let i = 0; i < 300; i++) asm.ret(i);
  asm.place(far);
  asm.jump('jgt', 1, both, both); // both ways to one far label: one trampoline serves both
  for (let i = 0; i < 256; i++) asm.ret(1000 + i);
  asm.place(both);
  asm.ret(0xdead);
  const program = asm.assemble();
  assert.equal(program.slice(0, 3), [
    { code: 0x20, jt: 0, jf: 0, k: 0 },
    { code: 0x15, jt: 0, jf: 1, k: 7 },
    { code: 0x05, jt: 0, jf: 0, k: 300 },
  ]);
  assert.equal(program.slice(303, 305), [{ code: 0x25, jt: 0, jf: 0, k: 1 }, { code: 0x05, jt: 0, jf: 0, k: 256 }]);
  assert.is(program.length, 1 + 2 + 300 + 2 + 256 + 1);
  const filter = encode(program);
  assert.is(run(filter, { nr: 7, arch: 0 }).result, 0xdead);
  assert.is(run(filter, { nr: 8, arch: 0 }).result, 0);
});

test('jumps further than 255 instructions in a compiled profile still land right', () => {
  // 120 rules on read: its chain is far longer than 255 instructions, and every failed rule
  // before the last must still reach the default return at the end.
  const entries: RefEntry[] = Array.from({ length: 120 }, (_, i) => ({ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: i + 1, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1000 + i }, { index: 1, op: 'SCMP_CMP_GT', value: i }] }));
  const profile: RefProfile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [...entries, { names: ['write'], action: 'SCMP_ACT_KILL_PROCESS' }] };
  const filter = compileSeccomp(profile, FIELD);
  const program = decode(filter);
  assert.ok(program.length > 600, `${program.length}`);
  for (let i = 0; i < 120; i += 7) {
    assert.is(verdict(filter, AUDIT_X86_64, 0, [BigInt(1000 + i), BigInt(i + 1)]), errno(i + 1));
    assert.is(verdict(filter, AUDIT_X86_64, 0, [BigInt(1000 + i), BigInt(i)]), ALLOW);
  }
  assert.is(verdict(filter, AUDIT_X86_64, 1), 0x80000000);
});

test('a profile over the kernel\'s 4096 instructions is refused, naming the count', () => {
  const entries = Array.from({ length: 400 }, (_, i) => ({ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, op: 'SCMP_CMP_EQ', value: i }, { index: 2, op: 'SCMP_CMP_LT', value: i }] }));
  try {
    compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: entries }, 'spec.linux.seccomp');
    assert.unreachable('accepted');
  } catch (err) {
    assert.instance(err, VcError);
    assert.is((err as VcError).code, 'INVALID_CONFIG');
    assert.match((err as Error).message, /^invalid spec\.linux\.seccomp: the profile compiles to \d+ BPF instructions, more than the kernel's limit of 4096/);
  }
});

/** A profile the way containerd's default looks: default ERRNO(EPERM), a long allow-list, argument
 *  rules for personality and clone, clone3 -> ENOSYS, other-architecture names mixed in. Built here
 *  from the table, not copied. */
function allowListProfile(): RefProfile {
  const denied = new Set(['mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'clone', 'clone3', 'personality', 'bpf', 'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'reboot', 'swapon', 'swapoff', 'acct', 'syslog', 'ptrace', 'perf_event_open', 'keyctl', 'add_key', 'request_key', 'open_by_handle_at', 'iopl', 'ioperm', 'quotactl', 'settimeofday', 'clock_settime', 'lookup_dcookie', 'userfaultfd', 'vhangup', 'mount_setattr', 'fsopen', 'fsmount', 'fsconfig', 'move_mount', 'open_tree', 'fspick']);
  const allowed = Object.keys(X86_64_SYSCALLS).filter((n) => !denied.has(n)).slice(0, 300);
  allowed.push('_llseek', 'socketcall', 'waitpid', 'arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'riscv_flush_icache', 'set_tls', 'breakpoint', 'cacheflush');
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: allowed, action: 'SCMP_ACT_ALLOW' },
      ...[0, 8, 0x20000, 0x20008, 0xffffffff].map((value): RefEntry => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value }] })),
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000, valueTwo: 0 }] },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['ptrace'], action: 'SCMP_ACT_ALLOW' },
    ],
  };
}

test('a containerd-style allow-list (default ERRNO, ~300 names, argument rules) compiles well under the limits', () => {
  const profile = allowListProfile();
  assert.ok(profile.syscalls![0]!.names.length >= 300);
  const compiled = compileSeccompWithFlags(profile, FIELD);
  assert.equal(compiled.warnings, [], 'other-architecture names are skipped quietly');
  const program = decode(compiled.filter);
  console.log(`  allow-list: ${program.length} instructions`);
  assert.ok(program.length < 1200, `${program.length} instructions`);
  let worst = 0;
  for (const [arch, table] of [[AUDIT_X86_64, X86_64_SYSCALLS], [AUDIT_I386, I386_SYSCALLS], [AUDIT_X86_64, X32_SYSCALLS]] as const) {
    for (const nr of new Set(Object.values(table))) {
      for (const args of [[0n], [0x10000000n], [8n], [4n]]) {
        const { result, steps } = run(compiled.filter, { arch, nr, args });
        assert.is(result, expectedAction(profile, arch, nr, args), `arch ${arch.toString(16)} nr ${nr} ${args}`);
        worst = Math.max(worst, steps);
      }
    }
  }
  // A binary search, not a list: any call is decided in a few dozen instructions.
  console.log(`  allow-list: at most ${worst} instructions run per call`);
  assert.ok(worst < 50, `${worst} steps`);
  const x64 = (name: string, ...args: bigint[]) => verdict(compiled.filter, AUDIT_X86_64, X86_64_SYSCALLS[name]!, args);
  assert.is(x64('read'), ALLOW);
  assert.is(x64('mount'), EPERM);
  assert.is(x64('personality', 8n), ALLOW);
  assert.is(x64('personality', 4n), EPERM);
  assert.is(x64('clone', 0x11n), ALLOW);
  assert.is(x64('clone', 0x20000000n), EPERM);
  assert.is(x64('clone3'), errno(38));
  assert.is(verdict(compiled.filter, AUDIT_I386, I386_SYSCALLS.socketcall!), ALLOW);
  assert.is(verdict(compiled.filter, AUDIT_AARCH64, 63), KILL_PROCESS);
});

test.run();
