// Host cgroups for pods (native/host/cgroup.cc through the addon and src/host/cgroup.ts): limits
// written to the hierarchy this host offers (read back from the files), processes joined and
// listed, removal that kills what is left and leaves no directory, and input rejected before native
// code. The v1 and v2 specific tests say `SKIP name: reason` where the host uses the other version.
// `vc-vmm run --cgroup` is tested in test/kvm/cgroup-vmm.test.ts (it needs KVM).
// Every test removes what it made in finally blocks; test.after removes any leftover group.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VcError } from '../../src/errors.js';
import { cgroupPids, createPodCgroup, removePodCgroup } from '../../src/host/cgroup.js';
import type { CgroupPaths } from '../../src/model/cgroup.js';
import { native } from '../../src/native.js';
import { cgroupTest, groupDir, groupName, leftoverGroups, limits, MiB, prefix, read, removeLeftoverGroupsAfter, support } from '../helpers/cgroups.js';
import { withoutKernelThreads } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const dir = tempDir('vc-cg');
removeLeftoverGroupsAfter(() => dir.remove());

// Creates a group for the duration of fn and removes it afterwards, even when fn throws.
async function withGroup(what: string, limits: { cpus: number; memoryBytes: number; pidsMax: number }, fn: (cg: CgroupPaths) => Promise<void> | void) {
  const cg = createPodCgroup(groupName(what), limits);
  try {
    await fn(cg);
  } finally {
    await removePodCgroup(cg.paths);
  }
  for (const p of cg.paths) assert.not.ok(existsSync(p), `${p} is removed`);
}

test('cgroupSupport names the hierarchy pods get here, or why there is none', () => {
  console.log(`  cgroups: ${JSON.stringify(support)}`);
  if (support.version === 2) assert.ok(existsSync(join(support.root, 'cgroup.controllers')));
  else if (support.version === 1) for (const p of Object.values(support.roots)) assert.ok(existsSync(join(p, 'cgroup.procs')), p);
  else assert.match(support.reason, /cpu|memory|pids|mountinfo/);
});

cgroupTest('cgroup v1: create writes cpu.cfs_quota_us/cfs_period_us, memory.limit_in_bytes and pids.max', async () => {
  const v1 = support;  // narrowed here, and so in the callback below
  if (v1.version !== 1) {
    console.log(`\nSKIP cgroup v1 limits: this host uses cgroup v${support.version}`);
    return;
  }
  await withGroup('v1', limits, (cg) => {
    assert.is(cg.version, 1);
    const mounts = new Set(Object.values(v1.roots));
    assert.is(cg.paths.length, mounts.size, 'one directory per distinct hierarchy');
    for (const p of cg.paths) assert.match(p, new RegExp(`/virtcontainers/${prefix}-v1-\\d+$`));
    assert.is(read(join(groupDir(cg, 'cpu'), 'cpu.cfs_period_us')), '100000');
    assert.is(read(join(groupDir(cg, 'cpu'), 'cpu.cfs_quota_us')), '150000');
    assert.is(read(join(groupDir(cg, 'memory'), 'memory.limit_in_bytes')), String(256 * MiB));
    const memsw = join(groupDir(cg, 'memory'), 'memory.memsw.limit_in_bytes');
    if (existsSync(memsw)) assert.is(read(memsw), String(256 * MiB), 'no swap beyond the memory limit');
    assert.is(read(join(groupDir(cg, 'pids'), 'pids.max')), '64');
  });
});

cgroupTest('cgroup v2: create writes cpu.max, memory.max, memory.swap.max and pids.max, controllers enabled above', async () => {
  const v2 = support;  // narrowed here, and so in the callback below
  if (v2.version !== 2) {
    console.log(`\nSKIP cgroup v2 limits: this host uses cgroup v1 (${v2.version === 1 ? v2.whyNotV2 : ''})`);
    return;
  }
  await withGroup('v2', limits, (cg) => {
    assert.is(cg.version, 2);
    assert.equal(cg.paths, [join(v2.root, 'virtcontainers', cg.paths[0]!.split('/').pop()!)]);
    const p = cg.paths[0]!;
    for (const parent of [v2.root, join(v2.root, 'virtcontainers')]) {
      const enabled = read(join(parent, 'cgroup.subtree_control')).split(/\s+/);
      for (const c of ['cpu', 'memory', 'pids']) assert.ok(enabled.includes(c), `${c} in ${parent}/cgroup.subtree_control`);
    }
    assert.is(read(join(p, 'cpu.max')), '150000 100000');
    assert.is(read(join(p, 'memory.max')), String(256 * MiB));
    if (existsSync(join(p, 'memory.swap.max'))) assert.is(read(join(p, 'memory.swap.max')), '0');
    assert.is(read(join(p, 'pids.max')), '64');
  });
});

cgroupTest('a joined process is listed; remove kills it, removes every directory, and a second remove is fine', async () => {
  const cg = createPodCgroup(groupName('join'), limits);
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, sig) => r(sig)));
  try {
    await new Promise((r) => child.on('spawn', r));
    for (const p of cg.paths) writeFileSync(join(p, 'cgroup.procs'), String(child.pid));
    assert.equal(cgroupPids(cg.paths), [child.pid]);
    await removePodCgroup(cg.paths);
    assert.is(await exited, 'SIGKILL');
    for (const p of cg.paths) assert.not.ok(existsSync(p), `${p} is removed`);
    await removePodCgroup(cg.paths);  // already gone: success
    for (const p of cg.paths) assert.ok(existsSync(join(p, '..')), 'the shared virtcontainers parent stays');
  } finally {
    child.kill('SIGKILL');
    await removePodCgroup(cg.paths);
  }
});

cgroupTest('remove kills a group whose processes keep forking', async () => {
  const cg = createPodCgroup(groupName('fork'), { ...limits, pidsMax: 1000 });
  // The shell waits for a line on stdin, so it forks only once it is in the group.
  const sh = spawn('sh', ['-c', 'read x; while :; do sleep 1000 & sleep 0.02; done'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    await new Promise((r) => sh.on('spawn', r));
    for (const p of cg.paths) writeFileSync(join(p, 'cgroup.procs'), String(sh.pid));
    sh.stdin!.write('go\n');
    await waitFor('the shell to fork a few sleeps', () => cgroupPids(cg.paths).length >= 4);
    const n = cgroupPids(cg.paths).length, t0 = Date.now();
    await removePodCgroup(cg.paths);
    console.log(`  removed a group of ${n}+ forking processes in ${Date.now() - t0} ms`);
    for (const p of cg.paths) assert.not.ok(existsSync(p));
  } finally {
    sh.kill('SIGKILL');
    await removePodCgroup(cg.paths);
  }
});

cgroupTest('a group that exists already is refused and stays as it was; a failure part-way leaves nothing', async () => {
  const n = groupName('dup');
  const first = createPodCgroup(n, limits);
  try {
    try {
      createPodCgroup(n, { ...limits, pidsMax: 5 });
      assert.unreachable('a second create of the same name succeeded');
    } catch (err) {
      assert.instance(err, VcError);
      assert.is((err as VcError).code, 'CGROUP_FAILED');
      assert.match((err as Error).message, new RegExp(`${n} already exists.*File exists`));
    }
    assert.is(read(join(groupDir(first, 'pids'), 'pids.max')), '64', 'the existing group is untouched');
  } finally {
    await removePodCgroup(first.paths);
  }
  // Past the TS checks, the kernel refuses a pids.max above PID_MAX_LIMIT: that is the last file
  // written, so the directories made before it must go again.
  const bad = groupName('partial');
  assert.throws(() => native().cgroupCreate(bad, { ...limits, pidsMax: 2147483647 }), (err: Error & { path?: string; errno?: number }) =>
    /cannot write "2147483647" to \/.*pids\.max: Invalid argument/.test(err.message) && /pids\.max$/.test(err.path ?? '') && err.errno === 22);
  assert.equal(leftoverGroups().filter((p) => p.endsWith(`/${bad}`)), [], 'no directory of the failed create remains');
});

test('the TS wrapper rejects bad names and limits before native code, naming the field and value', () => {
  const cases: [string, unknown, RegExp][] = [
    ['', limits, /cgroup name .* not ""/],
    ['a/b', limits, /cgroup name .* not "a\/b"/],
    ['..', limits, /cgroup name .* not "\.\."/],
    ['a..b', limits, /not "a\.\.b"/],
    ['.', limits, /not "\."/],
    ['x'.repeat(64), limits, /1-63 characters/],
    ['ok', { ...limits, cpus: 0 }, /limits\.cpus must be .*, not 0$/],
    ['ok', { ...limits, cpus: -1 }, /limits\.cpus .* not -1$/],
    ['ok', { ...limits, cpus: Number.NaN }, /limits\.cpus .* not null$/],
    ['ok', { ...limits, cpus: '1' }, /limits\.cpus .* not "1"$/],
    ['ok', { ...limits, memoryBytes: MiB - 1 }, /limits\.memoryBytes must be .*, not 1048575$/],
    ['ok', { ...limits, memoryBytes: 1.5 * MiB + 0.5 }, /limits\.memoryBytes .* not 1572864\.5$/],
    ['ok', { ...limits, pidsMax: 0 }, /limits\.pidsMax must be .*, not 0$/],
    ['ok', { ...limits, pidsMax: 2.5 }, /limits\.pidsMax .* not 2\.5$/],
    ['ok', { cpus: 1, memoryBytes: MiB }, /limits\.pidsMax .* not undefined$/],
    ['ok', null, /cgroup limits must be an object, not null/],
  ];
  for (const [n, l, re] of cases) {
    try {
      createPodCgroup(n, l as never);
      assert.unreachable(`${JSON.stringify(n)} ${JSON.stringify(l)} was accepted`);
    } catch (err) {
      assert.instance(err, VcError, String(err));
      assert.is((err as VcError).code, 'INVALID_CONFIG');
      assert.match((err as Error).message, re);
    }
  }
});

test('native errors name the path and the errno text; remove refuses what is not a pod group', async () => {
  assert.throws(() => native().cgroupPids(['/nonexistent/virtcontainers/x']),
    /cannot open \/nonexistent\/virtcontainers\/x\/cgroup\.procs: No such file or directory/);
  try {
    cgroupPids(['/nonexistent/virtcontainers/x']);
    assert.unreachable();
  } catch (err) {
    assert.is((err as VcError).code, 'CGROUP_FAILED');
    assert.match((err as Error).message, /cgroup\.procs: No such file or directory/);
  }
  for (const [path, why] of [['/tmp', /not a virtcontainers\/<name> group/], [`${dir.path}/virtcontainers/../x`, /component/], ['relative/virtcontainers/x', /absolute/]] as const) {
    try {
      await native().cgroupRemove([path]);
      assert.unreachable(path);
    } catch (err) {
      assert.match((err as Error).message, new RegExp(`refusing to remove ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
      assert.match((err as Error).message, why);
    }
  }
  // Right shape, but not on a cgroup filesystem: nothing is killed or removed.
  const fake = join(dir.path, 'virtcontainers', 'x');
  spawnSync('mkdir', ['-p', fake]);
  writeFileSync(join(fake, 'cgroup.procs'), `${process.pid}\n`);
  try {
    await native().cgroupRemove([fake]);
    assert.unreachable('a directory outside cgroupfs was removed');
  } catch (err) {
    assert.match((err as Error).message, /not a cgroup directory/);
  }
  assert.ok(existsSync(fake));
});

test.run();
