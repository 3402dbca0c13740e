// KvmHypervisor (the pod API's seam to vc-vmm) on this host's /dev/kvm, with the freestanding test
// guest in place of Linux (PVM cannot boot a stock kernel; the Linux pod tests run in the nested
// harness): detached start inside the pod's cgroup, status, pause/resume, disk errors, stop, a VMM
// killed from outside, and nothing left behind either way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvmHypervisor } from '../../src/hypervisor/kvm/kvm.js';
import type { VmSpec } from '../../src/hypervisor/types.js';
import { cgroupPids, cgroupSupport, createPodCgroup, podCgroupPaths, removePodCgroup } from '../../src/host/cgroup.js';
import { cgroupName } from '../../src/hypervisor/kvm/config.js';
import { isAlive, waitForExit } from '../../src/host/process.js';
import { nativeExecutable, packageRoot } from '../../src/native.js';
import { podPaths } from '../../src/store/paths.js';
import { vmmProcessesUnder, withoutKernelThreads } from '../helpers/pods.js';
import { requireTestGuestHost } from '../helpers/kvm-host.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('vc-kvmh');
test.after(() => {
  for (const pid of vmmProcessesUnder(dir.path)) process.kill(pid, 'SIGKILL');
  dir.remove();
});

requireTestGuestHost();

const guest = join(packageRoot, 'build/Release/testguest/vctest.bzImage');
const caps = spawnSync(nativeExecutable('vc-vmm'), ['caps'], { encoding: 'utf8' });
const tscKhz = caps.status === 0 ? Number(JSON.parse(caps.stdout).tscKhz ?? 0) : 0;
const support = cgroupSupport();
// Only a host without cgroups skips these (its KVM is checked by the first test).
const skipReason = support.version === null ? `no usable cgroups: ${support.reason}` : null;

function kvmTest(name: string, body: () => Promise<void>): void {
  if (skipReason) {
    test(name, () => console.log(`SKIP ${name}: ${skipReason}`));
    return;
  }
  test(name, body);
}

/** A pod directory and a spec that boots the test guest's hot-plug test: it waits for a disk. */
function guestSpec(id: string): VmSpec {
  const paths = podPaths(dir.path, id);
  mkdirSync(paths.dir, { recursive: true });
  return {
    id, paths, vcpus: 1, memoryMiB: 64, kernelPath: guest, initrdPath: '',
    kernelCmdline: `vctest=hotplug expect_sectors=16 ${tscKhz ? `tsc_khz=${tscKhz}` : ''}`,
  };
}

async function waitForConsole(path: string, re: RegExp, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path) && re.test(readFileSync(path, 'utf8'))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.unreachable(`no ${re} on the console within ${ms} ms: ${existsSync(path) ? readFileSync(path, 'utf8') : '(none)'}`);
}

kvmTest('start runs vc-vmm detached in its cgroup; status, pause/resume, disk errors; stop leaves nothing', async () => {
  const kvm = new KvmHypervisor();
  const spec = guestSpec('life');
  const vmm = await kvm.start(spec);
  try {
    assert.ok(isAlive(vmm.pid), 'vc-vmm is running');
    assert.ok(vmm.cgroup && vmm.cgroup.paths.length > 0, 'the start records a cgroup');
    assert.equal(withoutKernelThreads(cgroupPids(vmm.cgroup!.paths)), [vmm.pid], 'the VMM, and only it, is in the pod cgroup');
    await waitForConsole(spec.paths.console, /^HOTPLUG waiting/m);
    assert.ok(await kvm.isRunning(vmm, spec.paths));
    assert.is(await kvm.vmState(vmm, spec.paths), 'running');

    await kvm.pause(vmm, spec.paths);
    assert.is(await kvm.vmState(vmm, spec.paths), 'paused');
    await kvm.resume(vmm, spec.paths);
    assert.is(await kvm.vmState(vmm, spec.paths), 'running');

    try {
      await kvm.detachDisk(vmm, spec.paths, 'not-attached');
      assert.unreachable('detaching an unknown disk must fail');
    } catch (err) {
      assert.match((err as Error).message, /DETACH_FAILED: no attached disk has serial "not-attached"/);
    }
    try {
      await kvm.attachDisk(vmm, spec.paths, { serial: 'x', path: join(dir.path, 'missing.img') });
      assert.unreachable('attaching a missing file must fail');
    } catch (err) {
      assert.match((err as Error).message, /ATTACH_FAILED: .*missing\.img/);
    }

    await kvm.stop(vmm, spec.paths, { timeoutMs: 5000 });
    assert.not.ok(await kvm.isRunning(vmm, spec.paths));
    await kvm.cleanup(spec.paths, vmm);
    for (const d of vmm.cgroup!.paths) assert.not.ok(existsSync(d), `cgroup ${d} removed`);
    assert.equal(readdirSync(spec.paths.dir).filter((f) => f.endsWith('.sock') || f === 'vmm.json'), []);
    assert.match(readFileSync(spec.paths.vmmLog, 'utf8'), /VM stopped: requested/);
  } finally {
    if (isAlive(vmm.pid)) process.kill(vmm.pid, 'SIGKILL');
  }
});

kvmTest('a vc-vmm killed from outside is no longer running, and cleanup removes its cgroup', async () => {
  const kvm = new KvmHypervisor();
  const spec = guestSpec('killed');
  const vmm = await kvm.start(spec);
  await waitForConsole(spec.paths.console, /^HOTPLUG waiting/m);
  process.kill(vmm.pid, 'SIGKILL');
  assert.ok(await waitForExit(vmm.pid, 5000));
  assert.not.ok(await kvm.isRunning(vmm, spec.paths));
  assert.is(await kvm.vmState(vmm, spec.paths), null);
  await kvm.cleanup(spec.paths, vmm);
  for (const d of vmm.cgroup!.paths) assert.not.ok(existsSync(d), `cgroup ${d} removed`);
  assert.equal(readdirSync(spec.paths.dir).filter((f) => f.endsWith('.sock')), []);
});

kvmTest('a cgroup left by an interrupted start (with a process in it) is replaced, not a reason to fail', async () => {
  const kvm = new KvmHypervisor();
  const spec = guestSpec('stale');
  const name = cgroupName('stale', spec.paths, (text) => createHash('sha256').update(text).digest('hex'));
  const stale = createPodCgroup(name, { cpus: 1, memoryBytes: 64 << 20, pidsMax: 8 });
  const orphan = spawn('sleep', ['1000'], { stdio: 'ignore' });
  try {
    for (const d of stale.paths) writeFileSync(join(d, 'cgroup.procs'), String(orphan.pid));
    assert.equal(podCgroupPaths(name), stale.paths);
    const vmm = await kvm.start(spec);
    try {
      assert.equal(withoutKernelThreads(cgroupPids(vmm.cgroup!.paths)), [vmm.pid], 'the orphan went with the stale group');
    } finally {
      await kvm.stop(vmm, spec.paths, { timeoutMs: 5000 });
      await kvm.cleanup(spec.paths, vmm);
    }
  } finally {
    orphan.kill('SIGKILL');
    await removePodCgroup(stale.paths);
  }
});

kvmTest('a start that fails (no such kernel) says why and leaves no process, cgroup or socket', async () => {
  const kvm = new KvmHypervisor();
  const spec = { ...guestSpec('bad'), kernelPath: join(dir.path, 'no-kernel') };
  try {
    await kvm.start(spec);
    assert.unreachable('start must fail without a kernel');
  } catch (err) {
    assert.match((err as Error).message, /vc-vmm failed to start pod bad: .*no-kernel/);
  }
  assert.equal(vmmProcessesUnder(spec.paths.dir), []);
  assert.equal(readdirSync(spec.paths.dir).filter((f) => f.endsWith('.sock') || f === 'vmm.json'), []);
  const leftovers = ['cpu', 'memory', 'pids', '.'].flatMap((h) => {
    const base = h === '.' ? '/sys/fs/cgroup/virtcontainers' : `/sys/fs/cgroup/${h}/virtcontainers`;
    return existsSync(base) ? readdirSync(base).filter((n) => n.startsWith('bad-')) : [];
  });
  assert.equal(leftovers, [], 'no cgroup named after the failed pod');
});

test.run();
