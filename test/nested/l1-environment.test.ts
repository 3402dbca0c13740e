// What the nested-KVM harness promises a command in L1 (test/harness/l1.ts): a KVM that runs
// stock guests (kvm_amd), the host's root read-only at the same paths, writable /tmp, scratch dir
// and cache, and cgroup2 with the cpu, memory and pids controllers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/guest/cache.js';
import { resolveKernel } from '../../src/guest/kernel.js';
import { native, packageRoot } from '../../src/native.js';

test('runs in L1: VC_NESTED_L1=1, the L1 kernel, the host PATH and HOME', () => {
  assert.is(process.env.VC_NESTED_L1, '1');
  assert.match(readFileSync('/proc/sys/kernel/osrelease', 'utf8'), /^\d+\.\d+\.\d+-\d+-amd64\n$/, 'Debian generic kernel');
  assert.ok(process.env.HOME && process.env.PATH?.includes('/usr/bin'));
});

test('/dev/kvm is kvm_amd and the addon says stock guests run on it', () => {
  const st = statSync('/dev/kvm');
  assert.ok(st.isCharacterDevice(), '/dev/kvm is a character device');
  closeSync(openSync('/dev/kvm', 'r+'));
  const probe = native().kvmProbe();
  console.log(`  kvm probe: ${JSON.stringify(probe)}`);
  assert.is(probe.flavor, 'kvm_amd');
  assert.is(probe.available, true);
  assert.is(probe.apiVersion, 12);
  assert.is(probe.stockGuests, true);
  assert.is(probe.reason, null);
  // The NX-hugepage recovery thread locked L1 up under host load; the harness loads kvm without it.
  assert.is(readFileSync('/sys/module/kvm/parameters/nx_huge_pages', 'utf8').trim(), 'never');
});

test('the host root is read-only at the same paths; /tmp, /run and /dev/shm are writable', () => {
  assert.ok(statSync(join(packageRoot, 'package.json')).isFile(), 'the project is where it is on the host');
  // (Not the project tree itself: a checkout under /tmp is writable there, in L1's memory.)
  assert.throws(() => writeFileSync(`/etc/.l1-write-${process.pid}`, 'x'), /EROFS/);
  for (const dir of ['/tmp', '/run', '/dev/shm']) {
    const d = mkdtempSync(join(dir, 'l1-env-'));
    writeFileSync(join(d, 'f'), 'ok');
    assert.is(readFileSync(join(d, 'f'), 'utf8'), 'ok', dir);
    rmSync(d, { recursive: true });
  }
  assert.ok(statSync('/dev/pts/ptmx').isCharacterDevice(), '/dev/pts is mounted');
});

test('the scratch dir is writable at its host path', () => {
  const scratch = process.env.VC_L1_SCRATCH;
  assert.ok(scratch, 'VC_L1_SCRATCH names it');
  const file = join(scratch, `l1-env-${process.pid}`);
  writeFileSync(file, 'from L1');
  assert.is(readFileSync(file, 'utf8'), 'from L1');
  rmSync(file);
});

test('the cache dir is writable and its kernels are the host\'s', async () => {
  const dir = mkdtempSync(join(cacheDir(), '.tmp-l1-env-'));
  writeFileSync(join(dir, 'f'), 'x');
  rmSync(dir, { recursive: true });
  const messages: string[] = [];
  const kernel = await resolveKernel({ packageFrom: false, onProgress: (m) => messages.push(m) });
  assert.match(kernel.release, /-cloud-amd64$/);
  assert.match(messages.join(' '), /using cached/, 'found in the host\'s cache, no apt');
});

test('cgroup2 at /sys/fs/cgroup with cpu, memory and pids enabled for children', () => {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  assert.match(mounts, /^\S+ \/sys\/fs\/cgroup cgroup2 /m);
  const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim().split(' ');
  const enabled = readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').trim().split(' ');
  for (const c of ['cpu', 'memory', 'pids']) {
    assert.ok(controllers.includes(c), `${c} available`);
    assert.ok(enabled.includes(c), `${c} enabled in the root's subtree_control`);
  }
  const child = `/sys/fs/cgroup/l1-env-${process.pid}`;
  mkdirSync(child);
  try {
    writeFileSync(join(child, 'memory.max'), `${64 * 1024 * 1024}`);
    writeFileSync(join(child, 'pids.max'), '50');
    writeFileSync(join(child, 'cpu.max'), '50000 100000');
    assert.is(readFileSync(join(child, 'memory.max'), 'utf8').trim(), `${64 * 1024 * 1024}`);
    assert.is(readFileSync(join(child, 'pids.max'), 'utf8').trim(), '50');
    assert.is(readFileSync(join(child, 'cpu.max'), 'utf8').trim(), '50000 100000');
  } finally {
    rmdirSync(child);
  }
});

test.run();
