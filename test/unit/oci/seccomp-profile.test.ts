// The seccomp profile's checks (every refusal names the field and the value) and the generated
// system call table (a few numbers known by heart, and the committed file equals the generator's
// output on this machine's headers).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VcError } from '../../../src/errors.js';
import { packageRoot } from '../../../src/native.js';
import { compileSeccomp, compileSeccompWithFlags, defaultSeccompProfile } from '../../../src/oci/seccomp/index.js';
import { I386_SYSCALLS, OTHER_ARCH_SYSCALLS, X32_SYSCALLS, X86_64_SYSCALLS } from '../../../src/oci/seccomp/syscall-table.js';
import { generate, parseUnistd } from '../../../scripts/seccomp-syscalls.js';

const FIELD = 'container.security.seccomp';

function refusal(profile: unknown): string {
  try {
    compileSeccomp(profile, FIELD);
  } catch (err) {
    assert.instance(err, VcError);
    assert.is((err as VcError).code, 'INVALID_CONFIG');
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(profile)} to be refused`);
}

const allow = { defaultAction: 'SCMP_ACT_ALLOW' };
const rule = (extra: object) => ({ ...allow, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', ...extra }] });
const arg = (extra: object) => rule({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ', ...extra }] });

test('x86_64, i386 and x32 numbers from the headers', () => {
  assert.equal([X86_64_SYSCALLS.read, X86_64_SYSCALLS.write, X86_64_SYSCALLS.clone, X86_64_SYSCALLS.execve, X86_64_SYSCALLS.unshare, X86_64_SYSCALLS.clone3, X86_64_SYSCALLS.set_mempolicy_home_node], [0, 1, 56, 59, 272, 435, 450]);
  assert.equal([I386_SYSCALLS.exit, I386_SYSCALLS.read, I386_SYSCALLS.getpid, I386_SYSCALLS.socketcall, I386_SYSCALLS.unshare, I386_SYSCALLS.clone3], [1, 3, 20, 102, 310, 435]);
  assert.equal([X32_SYSCALLS.read, X32_SYSCALLS.getpid, X32_SYSCALLS.rt_sigaction, X32_SYSCALLS.execve], [0x40000000, 0x40000000 + 39, 0x40000000 + 512, 0x40000000 + 520]);
  // Newer than the headers, numbered alike on every architecture (map_shadow_stack: x86_64 only).
  assert.equal([X86_64_SYSCALLS.cachestat, I386_SYSCALLS.mseal, X32_SYSCALLS.futex_wait], [451, 462, 0x40000000 + 455]);
  assert.is(X86_64_SYSCALLS.map_shadow_stack, 453);
  assert.is(I386_SYSCALLS.map_shadow_stack, undefined);
  assert.is(X86_64_SYSCALLS.socketcall, undefined, 'i386 only');
  assert.ok(OTHER_ARCH_SYSCALLS.includes('arm_fadvise64_64') && OTHER_ARCH_SYSCALLS.includes('riscv_flush_icache'));
  assert.not.ok(OTHER_ARCH_SYSCALLS.includes('read'), 'x86 names are not listed as other-architecture names');
  const numbers = Object.values(X86_64_SYSCALLS);
  assert.is(new Set(numbers).size, numbers.length, 'one name per x86_64 number');
});

test('the x32 header\'s form is read, and #defines that are not numbers are not', () => {
  const table = parseUnistd('#define __NR_read (__X32_SYSCALL_BIT + 0)\n#define __NR_write 1\n#define __NR_fcntl __NR3264_fcntl\n#define __NR_x 2 /* c */\n');
  assert.equal([...table], [['read', 0x40000000], ['write', 1]]);
});

test('the committed table is the generator\'s output on this machine\'s headers', (context) => {
  const headers = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
  if (!existsSync(headers) || !existsSync('/usr/include/asm-generic/unistd.h')) {
    console.log(`\nSKIP ${context.__test__}: ${headers} or asm-generic/unistd.h is missing (linux-libc-dev is not installed)`);
    return;
  }
  const committed = readFileSync(join(packageRoot, 'src/oci/seccomp/syscall-table.ts'), 'utf8');
  assert.ok(generate('/usr/include') === committed, 'run `node dist/scripts/seccomp-syscalls.js` and commit the result');
});

test('a bad action, arch, flag, operator, index or value names the field and the value', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ defaultAction: 'SCMP_ACT_NOTIFY' }, /container\.security\.seccomp\.defaultAction: is not supported: no seccomp user-notification agent.*got "SCMP_ACT_NOTIFY"/],
    [{ defaultAction: 'ALLOW' }, /defaultAction: must be one of the actions: SCMP_ACT_KILL, .*got "ALLOW"/],
    [{ ...allow, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'] }, /architectures\.1: is not an architecture this x86_64 runtime runs; give one of: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, got "SCMP_ARCH_AARCH64"/],
    [{ ...allow, flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }, /flags\.0: is not supported.*got "SECCOMP_FILTER_FLAG_NEW_LISTENER"/],
    [{ ...allow, flags: ['SECCOMP_FILTER_FLAG_BOGUS'] }, /flags\.0: must be one of the flags.*got "SECCOMP_FILTER_FLAG_BOGUS"/],
    [{ ...allow, listenerPath: '/run/notify.sock' }, /listenerPath: is not supported.*got "\/run\/notify\.sock"/],
    [{ ...allow, listenerMetadata: 'x' }, /listenerMetadata: is not supported.*got "x"/],
    [{ ...allow, extra: 1 }, /container\.security\.seccomp: Unrecognized key: "extra"/],
    [rule({ action: 'SCMP_ACT_NOTIFY' }), /syscalls\.0\.action: is not supported.*got "SCMP_ACT_NOTIFY"/],
    [rule({ names: [] }), /syscalls\.0\.names: Too small/],
    [rule({ names: ['Read;'] }), /syscalls\.0\.names\.0: must be a system call name, got "Read;"/],
    [rule({ errnoRet: 5000 }), /syscalls\.0\.errnoRet: must be an errno, at most 4095, got 5000/],
    [rule({ action: 'SCMP_ACT_ALLOW', errnoRet: 1 }), /syscalls\.0\.errnoRet: is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW, got 1/],
    [{ defaultAction: 'SCMP_ACT_KILL', defaultErrnoRet: 1 }, /defaultErrnoRet: is only meaningful.*got 1/],
    [arg({ index: 6 }), /syscalls\.0\.args\.0\.index: Too big.*got 6/],
    [arg({ op: 'SCMP_CMP_MASKED_NE' }), /syscalls\.0\.args\.0\.op: must be one of the operators.*got "SCMP_CMP_MASKED_NE"/],
    [arg({ value: -1 }), /syscalls\.0\.args\.0\.value: must be between 0 and 2\^64-1, got -1/],
    [arg({ value: 2 ** 60 }), /args\.0\.value: is above 2\^53.*give it as a decimal string, got 1152921504606847000/],
    [arg({ value: '18446744073709551616' }), /args\.0\.value: must be between 0 and 2\^64-1, got "18446744073709551616"/],
    [arg({ valueTwo: 'x' }), /args\.0\.valueTwo: must be an unsigned 64-bit integer.*got "x"/],
    [arg({ value: 1.5 }), /args\.0\.value: must be an unsigned 64-bit integer, got 1\.5/],
    [arg({ extra: true }), /syscalls\.0\.args\.0: Unrecognized key: "extra"/],
    ['default', /container\.security\.seccomp: Invalid input: expected object, received string, got "default"/],
  ];
  for (const [profile, message] of cases) {
    const text = refusal(profile);
    assert.match(text, /^invalid container\.security\.seccomp: /, text);
    assert.match(text, message, text);
  }
});

test('values are exact to 2^64-1 as strings and bigints', () => {
  for (const value of ['18446744073709551615', 18446744073709551615n, Number.MAX_SAFE_INTEGER, '0']) {
    assert.ok(compileSeccomp(arg({ value }), FIELD).length > 0, String(value));
  }
});

test('flags: LOG and SPEC_ALLOW are passed on, TSYNC is accepted and needs no passing', () => {
  const flags = (f: string[]) => compileSeccompWithFlags({ ...allow, flags: f }, FIELD).flags;
  assert.is(flags([]), 0);
  assert.is(flags(['SECCOMP_FILTER_FLAG_LOG']), 2);
  assert.is(flags(['SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG']), 6);
  assert.is(flags(['SECCOMP_FILTER_FLAG_TSYNC']), 0);
});

test('names of other architectures are skipped quietly; names of none are skipped with a warning', () => {
  const profile = { ...allow, syscalls: [
    { names: ['read', 'arm_fadvise64_64', 'socketcall', 'rt_sigaction'], action: 'SCMP_ACT_ERRNO' },
    { names: ['not_a_syscall', 'write'], action: 'SCMP_ACT_ERRNO' },
  ] };
  const { warnings } = compileSeccompWithFlags(profile, FIELD);
  assert.equal(warnings, [`${FIELD}.syscalls.1.names.0: "not_a_syscall" is no system call of any architecture known here; skipped`]);
});

test('the default profile names only known calls, and compiles without warnings', () => {
  const profile = defaultSeccompProfile();
  for (const entry of profile.syscalls ?? []) {
    for (const name of entry.names) {
      assert.ok(X86_64_SYSCALLS[name] !== undefined || I386_SYSCALLS[name] !== undefined, `${name} is an x86 call`);
    }
  }
  const compiled = compileSeccompWithFlags(profile, FIELD);
  assert.equal(compiled.warnings, []);
  assert.is(compiled.flags, 0);
  assert.ok(compiled.filter.length / 8 < 400, `${compiled.filter.length / 8} instructions`);
  assert.equal(defaultSeccompProfile(), profile, 'a fresh object each time, the same content');
});

test.run();
