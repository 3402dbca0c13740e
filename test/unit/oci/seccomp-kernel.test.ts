// Compiled filters on this host's real kernel: test/fixtures/seccomp-exec.c (built here with cc)
// installs a filter the way the guest agent does (no_new_privs, seccomp(SET_MODE_FILTER)) and runs
// a command under it. Each case runs the same command under an allow-all filter too, so a failure
// is the filter's doing and not the host's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../../src/native.js';
import { compileSeccompWithFlags, defaultSeccompProfile } from '../../../src/oci/seccomp/index.js';
import { tempDir } from '../../helpers/tmp.js';

const scratch = tempDir('vc-seccomp');
test.after(() => scratch.remove());

function which(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** Why the fixture cannot be built here, or null once it is. */
const fixture = join(scratch.path, 'seccomp-exec');
const buildProblem = ((): string | null => {
  if (process.arch !== 'x64' || process.platform !== 'linux') return `the filters are for x86_64 Linux, this is ${process.platform}/${process.arch}`;
  if (!which('cc')) return 'cc (a C compiler) is not installed';
  const cc = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', fixture, join(packageRoot, 'test/fixtures/seccomp-exec.c')], { encoding: 'utf8' });
  return cc.status === 0 ? null : `cc failed to build test/fixtures/seccomp-exec.c: ${cc.stderr}`;
})();

let files = 0;
/** Compiles `profile` and writes the filter to a file; returns the path and the flags. */
function filterFile(profile: unknown): { path: string; flags: number } {
  const { filter, flags } = compileSeccompWithFlags(profile, 'seccomp');
  const path = join(scratch.path, `filter-${files++}.bpf`);
  writeFileSync(path, filter);
  return { path, flags };
}

interface Outcome { status: number | null; signal: string | null; stdout: string; stderr: string }
function under(filter: { path: string; flags: number }, ...command: string[]): Outcome {
  const r = spawnSync(fixture, [filter.path, String(filter.flags), ...command], { encoding: 'utf8', timeout: 20_000 });
  if (r.status === 125) assert.unreachable(`the fixture could not install the filter: ${r.stderr}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const ALL_ARCHS = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
let defaultFilter: { path: string; flags: number };
let allowAll: { path: string; flags: number };

/** A kernel test: runs when the fixture built, else says which test and why not. */
function kernelTest(name: string, body: () => void): void {
  test(name, () => {
    if (buildProblem) {
      console.log(`\nSKIP ${name}: ${buildProblem}`);
      return;
    }
    defaultFilter ??= filterFile(defaultSeccompProfile());
    allowAll ??= filterFile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ALL_ARCHS });
    body();
  });
}

kernelTest('default profile: true, ls and sh -c run', () => {
  assert.is(under(defaultFilter, 'true').status, 0);
  const ls = under(defaultFilter, 'ls', '/');
  assert.is(ls.status, 0, ls.stderr);
  assert.match(ls.stdout, /\bproc\b/);
  const sh = under(defaultFilter, 'sh', '-c', 'echo one; (echo two) | cat; ls / >/dev/null && echo three');
  assert.is(sh.status, 0, sh.stderr);
  assert.is(sh.stdout, 'one\ntwo\nthree\n');
});

kernelTest('default profile: unshare -U fails with EPERM (it runs under an allow-all filter)', () => {
  if (!which('unshare')) {
    console.log('\nSKIP unshare -U: util-linux unshare is not installed');
    return;
  }
  const control = under(allowAll, 'unshare', '-U', 'true');
  if (control.status !== 0) {
    console.log(`\nSKIP unshare -U: it fails on this host even without a filter: ${control.stderr.trim()}`);
    return;
  }
  const denied = under(defaultFilter, 'unshare', '-U', 'true');
  assert.is.not(denied.status, 0);
  assert.match(denied.stderr, /Operation not permitted/);
});

kernelTest('default profile: busybox unshare -U fails with EPERM (it runs under an allow-all filter)', () => {
  if (!which('busybox')) {
    console.log('\nSKIP busybox unshare -U: busybox is not installed');
    return;
  }
  const control = under(allowAll, 'busybox', 'unshare', '-U', 'true');
  if (control.status !== 0) {
    console.log(`\nSKIP busybox unshare -U: it fails on this host even without a filter: ${control.stderr.trim()}`);
    return;
  }
  const denied = under(defaultFilter, 'busybox', 'unshare', '-U', 'true');
  assert.is.not(denied.status, 0);
  assert.match(denied.stderr, /Operation not permitted/);
});

kernelTest('default profile: clone3 gives ENOSYS so posix_spawn falls back to clone; EPERM would break it', () => {
  assert.is(under(defaultFilter, '@spawn', 'true').stdout, 'status 0\n');
  const clone3Eperm = filterFile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO' }] });
  assert.is(under(clone3Eperm, '@spawn', 'true').stdout, 'spawn-error 1\n', 'glibc falls back on ENOSYS only');
});

kernelTest('default profile: personality for setarch -R (no ASLR) is allowed, -X (READ_IMPLIES_EXEC) is not', () => {
  if (!which('setarch')) {
    console.log('\nSKIP setarch: util-linux setarch is not installed');
    return;
  }
  assert.is(under(defaultFilter, 'setarch', 'x86_64', '-R', 'true').status, 0);
  assert.is(under(allowAll, 'setarch', 'x86_64', '-X', 'true').status, 0);
  const denied = under(defaultFilter, 'setarch', 'x86_64', '-X', 'true');
  assert.is.not(denied.status, 0);
  assert.match(denied.stderr, /Operation not permitted/);
});

kernelTest('an ERRNO rule returns its errnoRet', () => {
  const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [
    { names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 77 },
    { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 121 },
  ] };
  const filter = filterFile(profile);
  assert.is(under(filter, '@syscall', '110' /* getppid */).stdout, '-1 77\n');
  const dir = join(scratch.path, 'made-here');
  const mkdir = under(filter, 'mkdir', dir);
  assert.is.not(mkdir.status, 0);
  assert.match(mkdir.stderr, /Remote I\/O error/, 'EREMOTEIO (121)');
  assert.is(under(allowAll, 'mkdir', dir).status, 0);
});

kernelTest('i386 calls (int 0x80) follow the i386 rules when SCMP_ARCH_X86 is listed, and are killed when not', () => {
  const getpid = under(allowAll, '@int80', '20');
  if (getpid.status !== 0 || !/^[1-9]\d* 0\n$/.test(getpid.stdout)) {
    console.log(`\nSKIP i386 calls: int 0x80 does not work on this kernel (no IA32 emulation?): ${JSON.stringify(getpid)}`);
    return;
  }
  assert.match(under(defaultFilter, '@int80', '20').stdout, /^[1-9]\d* 0\n$/, 'getpid is allowed');
  assert.is(under(defaultFilter, '@int80', '310', String(0x10000000)).stdout, '-1 1\n', 'unshare(CLONE_NEWUSER) on i386: EPERM');
  const notListed = filterFile({ defaultAction: 'SCMP_ACT_ALLOW' });
  assert.is(under(notListed, '@int80', '20').signal, 'SIGSYS', 'killed: the profile does not list SCMP_ARCH_X86');
});

kernelTest('x32 calls pass to the kernel when SCMP_ARCH_X32 is listed, and are killed when not', () => {
  const x32getpid = String(0x40000000 + 39);
  const listed = under(defaultFilter, '@syscall', x32getpid);
  assert.is(listed.status, 0);
  assert.match(listed.stdout, /^([1-9]\d* 0|-1 38)\n$/, 'the pid, or ENOSYS from a kernel without x32');
  const notListed = filterFile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'] });
  assert.is(under(notListed, '@syscall', x32getpid).signal, 'SIGSYS');
});

kernelTest('the LOG flag is passed to seccomp(2) and accepted', () => {
  const logged = filterFile({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_TSYNC'] });
  assert.is(logged.flags, 2);
  assert.is(under(logged, 'true').status, 0);
});

test.run();
