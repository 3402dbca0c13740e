// The kept answers of `vc-vmm --version` (src/hypervisor/kvm/vmm-version.ts), with a real
// executable (a shell script that counts its runs in a file): an unchanged binary is asked once,
// a binary replaced or rewritten in place — even to the same size with its mtime put back — is
// asked again, and a failed ask is not kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VersionCache, binaryIdentity } from '../../../src/hypervisor/kvm/vmm-version.js';
import { KvmHypervisor } from '../../../src/hypervisor/kvm/kvm.js';
import { VcError } from '../../../src/errors.js';
import { expectCode } from '../../helpers/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir('vcver');
test.after(() => tmp.remove());

let n = 0;
/** A fresh directory with an executable `vmm` printing `version` and counting its runs. */
function fakeVmm(version: string): { path: string; runs: () => number; write: (v: string, at?: string) => void } {
  const dir = join(tmp.path, String(n++));
  const path = join(dir, 'vmm');
  const counter = join(dir, 'runs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(counter, '');
  const write = (v: string, at = path) => {
    writeFileSync(at, `#!/bin/sh\necho x >> ${counter}\necho "${v}"\n`);
    chmodSync(at, 0o755);
  };
  write(version);
  return { path, runs: () => readFileSync(counter, 'utf8').split('\n').filter(Boolean).length, write };
}

test('an unchanged binary is asked once; concurrent callers share the one run', async () => {
  const vmm = fakeVmm('vc-vmm 1.0');
  const cache = new VersionCache();
  assert.equal(await Promise.all([cache.get(vmm.path), cache.get(vmm.path)]), ['vc-vmm 1.0', 'vc-vmm 1.0']);
  assert.is(await cache.get(vmm.path), 'vc-vmm 1.0');
  assert.is(vmm.runs(), 1, 'spawned once for three checks');
});

test('a binary replaced by another (rename over it) is asked again', async () => {
  const vmm = fakeVmm('vc-vmm 1.0');
  const cache = new VersionCache();
  assert.is(await cache.get(vmm.path), 'vc-vmm 1.0');
  vmm.write('vc-vmm 2.0', `${vmm.path}.new`);
  renameSync(`${vmm.path}.new`, vmm.path);
  assert.is(await cache.get(vmm.path), 'vc-vmm 2.0');
  assert.is(vmm.runs(), 2);
  assert.is(await cache.get(vmm.path), 'vc-vmm 2.0');
  assert.is(vmm.runs(), 2, 'and kept again once asked');
});

test('a binary rewritten in place to the same size with its mtime put back is asked again (ctime)', async () => {
  const vmm = fakeVmm('vc-vmm 1.0');
  const cache = new VersionCache();
  // Whole seconds: utimes puts them back exactly (a float of nanoseconds since 1970 would not).
  utimesSync(vmm.path, 1_000_000, 1_000_000);
  const before = statSync(vmm.path, { bigint: true });
  assert.is(await cache.get(vmm.path), 'vc-vmm 1.0');
  // The kernel stamps ctime from a clock that ticks every few ms: the rewrite comes a tick later.
  await new Promise((resolve) => setTimeout(resolve, 30));
  vmm.write('vc-vmm 1.1'); // same length, same inode
  utimesSync(vmm.path, 1_000_000, 1_000_000);
  const after = statSync(vmm.path, { bigint: true });
  assert.equal([after.ino, after.size, after.mtimeNs], [before.ino, before.size, before.mtimeNs], 'only the content (and ctime) changed');
  assert.is(await cache.get(vmm.path), 'vc-vmm 1.1');
  assert.is(vmm.runs(), 2);
});

test('a failed ask is not kept; a missing binary is HYPERVISOR_UNAVAILABLE naming its path', async () => {
  const vmm = fakeVmm('x');
  writeFileSync(vmm.path, '#!/bin/sh\nexit 3\n');
  const cache = new VersionCache();
  await expectCode(cache.get(vmm.path), VcError, 'HYPERVISOR_UNAVAILABLE', `${vmm.path} --version`);
  vmm.write('vc-vmm 3.0');
  assert.is(await cache.get(vmm.path), 'vc-vmm 3.0', 'asked again after the failure');
  await expectCode(cache.get(join(tmp.path, 'absent')), VcError, 'HYPERVISOR_UNAVAILABLE', `cannot stat ${join(tmp.path, 'absent')}`);
  await expectCode(binaryIdentity(join(tmp.path, 'absent')), VcError, 'HYPERVISOR_UNAVAILABLE', 'absent');
});

test('KvmHypervisor.vmmVersion answers what the built vc-vmm prints, the same each time', async () => {
  const kvm = new KvmHypervisor();
  const first = await kvm.vmmVersion();
  assert.match(first, /vc-vmm/);
  assert.is(await kvm.vmmVersion(), first);
});

test.run();
