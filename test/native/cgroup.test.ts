// Host cgroups for pods (native/host/cgroup.cc through the addon and src/host/cgroup.ts): limits
// written to the hierarchy this host offers (read back from the files), processes joined and
// listed, removal that kills what is left and leaves no directory, input rejected before native
// code, and `vc-vmm run --cgroup` putting the VMM (and so its guest RAM) in the group. The v1 and
// v2 specific tests say `SKIP name: reason` where the host uses the other version.
// Every test removes what it made in finally blocks; test.after removes any leftover group.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VcError } from '../../src/errors.js';
import { cgroupPids, cgroupSupport, createPodCgroup, removePodCgroup, type PodCgroup } from '../../src/host/cgroup.js';
import { native, nativeExecutable } from '../../src/native.js';
import { withoutKernelThreads } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const testGuest = join(root, 'build/Release/testguest/vctest.bzImage');
const support = cgroupSupport();
const prefix = `vct-${process.pid}`;
const dir = tempDir('vc-cg');
const MiB = 1024 * 1024;

// Every group directory this run might have made, whatever happened to the test that made it.
function leftoverGroups(): string[] {
  const parents =
    support.version === 2 ? [support.root] : support.version === 1 ? Object.values(support.roots) : [];
  return parents.flatMap((p) => {
    const parent = join(p, 'virtcontainers');
    if (!existsSync(parent)) return [];
    return readdirSync(parent).filter((n) => n.startsWith(prefix)).map((n) => join(parent, n));
  });
}

test.after(async () => {
  const left = leftoverGroups();
  if (left.length) await native().cgroupRemove(left);
  dir.remove();
});

let seq = 0;
function name(what: string) {
  return `${prefix}-${what}-${seq++}`;
}

function read(path: string) {
  return readFileSync(path, 'utf8').trim();
}


// A zombie counts as gone: a detached VMM is reaped by whoever PID 1 is, whenever it likes.
function alive(pid: number) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

// The directory of the group's `controller` hierarchy (v2: the one directory).
function groupDir(cg: PodCgroup, controller: 'cpu' | 'memory' | 'pids') {
  if (support.version !== 1) return cg.paths[0] ?? '';
  const mount = support.roots[controller];
  return cg.paths.find((p) => p.startsWith(`${mount}/`)) ?? '';
}

function cgroupTest(name: string, fn: () => Promise<void> | void) {
  test(name, async () => {
    if (support.version === null) {
      console.log(`\nSKIP ${name}: ${support.reason}`);
      return;
    }
    await fn();
  });
}

// Creates a group for the duration of fn and removes it afterwards, even when fn throws.
async function withGroup(what: string, limits: { cpus: number; memoryBytes: number; pidsMax: number }, fn: (cg: PodCgroup) => Promise<void> | void) {
  const cg = createPodCgroup(name(what), limits);
  try {
    await fn(cg);
  } finally {
    await removePodCgroup(cg.paths);
  }
  for (const p of cg.paths) assert.not.ok(existsSync(p), `${p} is removed`);
}

const limits = { cpus: 1.5, memoryBytes: 256 * MiB, pidsMax: 64 };

test('cgroupSupport names the hierarchy pods get here, or why there is none', () => {
  console.log(`  cgroups: ${JSON.stringify(support)}`);
  if (support.version === 2) assert.ok(existsSync(join(support.root, 'cgroup.controllers')));
  else if (support.version === 1) for (const p of Object.values(support.roots)) assert.ok(existsSync(join(p, 'cgroup.procs')), p);
  else assert.match(support.reason, /cpu|memory|pids|mountinfo/);
});

cgroupTest('cgroup v1: create writes cpu.cfs_quota_us/cfs_period_us, memory.limit_in_bytes and pids.max', async () => {
  if (support.version !== 1) {
    console.log(`\nSKIP cgroup v1 limits: this host uses cgroup v${support.version}`);
    return;
  }
  await withGroup('v1', limits, (cg) => {
    assert.is(cg.version, 1);
    const mounts = new Set(Object.values(support.roots));
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
  if (support.version !== 2) {
    console.log(`\nSKIP cgroup v2 limits: this host uses cgroup v1 (${support.version === 1 ? support.whyNotV2 : ''})`);
    return;
  }
  await withGroup('v2', limits, (cg) => {
    assert.is(cg.version, 2);
    assert.equal(cg.paths, [join(support.root, 'virtcontainers', cg.paths[0]!.split('/').pop()!)]);
    const p = cg.paths[0]!;
    for (const parent of [support.root, join(support.root, 'virtcontainers')]) {
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
  const cg = createPodCgroup(name('join'), limits);
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
  const cg = createPodCgroup(name('fork'), { ...limits, pidsMax: 1000 });
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
  const n = name('dup');
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
  const bad = name('partial');
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

// --- vc-vmm run --cgroup ---

function kvmUnusable(): string | null {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
  } catch (err) {
    return `cannot open /dev/kvm: ${(err as Error).message}`;
  }
  const caps = spawnSync(nativeExecutable('vc-vmm'), ['caps'], { encoding: 'utf8' });
  if (caps.status !== 0) return `vc-vmm caps: ${caps.stdout}${caps.stderr}`.trim();
  return null;
}

function vmmTest(name: string, fn: () => Promise<void>) {
  cgroupTest(name, async () => {
    const why = kvmUnusable();
    if (why) {
      console.log(`\nSKIP ${name}: ${why}`);
      return;
    }
    assert.ok(existsSync(testGuest), `${testGuest} is missing; run npm run build:native`);
    await fn();
  });
}

// A guest that waits (up to ~20 s) for a disk to be hot-attached: it keeps running until stopped.
function guestConfig(run: string) {
  return {
    kernel: testGuest,
    memoryMiB: 64,
    cmdline: 'vctest=hotplug',
    blocks: [{ readOnly: true }],
    serialOutput: join(dir.path, `${run}.serial`),
    controlSocket: join(dir.path, `${run}.sock`),
  };
}

async function controlStop(socket: string) {
  const sock = createConnection(socket);
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      let buf = '';
      sock.on('error', reject);
      sock.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
      });
      sock.write('{"op":"stop"}\n');
    });
    return JSON.parse(answer);
  } finally {
    sock.destroy();
  }
}

function memoryCharged(cg: PodCgroup): number {
  const d = groupDir(cg, 'memory');
  return Number(read(join(d, support.version === 2 ? 'memory.current' : 'memory.usage_in_bytes')));
}

vmmTest('vc-vmm run --detach --cgroup: the VMM is in the group before the VM exists, stops on the control socket, the group goes', async () => {
  const cg = createPodCgroup(name('vmm'), limits);
  const config = guestConfig('detached');
  let pid = 0;
  try {
    const args = ['run', '--config', '-', '--detach', '--log', join(dir.path, 'detached.log')];
    for (const p of cg.paths) args.push('--cgroup', p);
    const r = spawnSync(nativeExecutable('vc-vmm'), args, { input: JSON.stringify(config), encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    pid = (JSON.parse(r.stdout) as { pid: number }).pid;
    assert.equal(withoutKernelThreads(cgroupPids(cg.paths)), [pid], 'the VMM, and only it, is in the group');
    // /proc/PID/cgroup agrees: the v2 line, or the cpu, memory and pids v1 lines, name the group.
    const lines = read(`/proc/${pid}/cgroup`).split('\n');
    const relevant = support.version === 2 ? lines.filter((l) => l.startsWith('0::')) : lines.filter((l) => /^\d+:[^:]*\b(cpu|memory|pids)\b[^:]*:/.test(l));
    assert.is(relevant.length, support.version === 2 ? 1 : cg.paths.length, lines.join('\n'));
    for (const line of relevant) assert.match(line, new RegExp(`/virtcontainers/${prefix}-vmm-\\d+$`), line);
    const charged = memoryCharged(cg);
    console.log(`  memory charged to the group with the VM running: ${(charged / MiB).toFixed(1)} MiB`);
    assert.ok(charged > 0, 'the VMM\'s memory is charged to the group');
    await waitFor('the guest to wait for its disk', () => /HOTPLUG waiting/.test(existsSync(config.serialOutput) ? readFileSync(config.serialOutput, 'utf8') : ''));
    assert.equal(await controlStop(config.controlSocket), { ok: true, stopping: true });
    await waitFor('the VMM to exit', () => !alive(pid));
    await removePodCgroup(cg.paths);
    for (const p of cg.paths) assert.not.ok(existsSync(p));
    assert.not.ok(existsSync(config.controlSocket), 'the control socket is gone');
  } finally {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    await removePodCgroup(cg.paths);
  }
});

vmmTest('vc-vmm run --cgroup in the foreground joins too; removing the group ends the VMM', async () => {
  const cg = createPodCgroup(name('fg'), limits);
  const config = guestConfig('fg');
  const args = ['run', '--config', '-'];
  for (const p of cg.paths) args.push('--cgroup', p);
  let child: ChildProcess | undefined;
  try {
    child = spawn(nativeExecutable('vc-vmm'), args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((r) => child!.on('exit', (_c, sig) => r(sig)));
    child.stdin!.end(JSON.stringify(config));
    await waitFor('the guest to wait for its disk', () => /HOTPLUG waiting/.test(existsSync(config.serialOutput) ? readFileSync(config.serialOutput, 'utf8') : ''));
    assert.equal(withoutKernelThreads(cgroupPids(cg.paths)), [child.pid], stderr);
    await removePodCgroup(cg.paths);
    assert.is(await exited, 'SIGKILL');
    for (const p of cg.paths) assert.not.ok(existsSync(p));
  } finally {
    child?.kill('SIGKILL');
    await removePodCgroup(cg.paths);
  }
});

vmmTest('vc-vmm run --cgroup with a group that cannot be joined fails to start, naming the directory and errno, leaving nothing', async () => {
  const missing = join(support.version === 2 ? support.root : support.version === 1 ? support.roots.pids : '/', 'virtcontainers', name('missing'));
  for (const detach of [true, false]) {
    const config = guestConfig(`nojoin-${detach}`);
    const args = ['run', '--config', '-', ...(detach ? ['--detach'] : []), '--cgroup', missing];
    const r = spawnSync(nativeExecutable('vc-vmm'), args, { input: JSON.stringify(config), encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 1, `${detach ? 'detached' : 'foreground'}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cannot join cgroup ${missing}: .*${missing}/cgroup\\.procs.*: No such file or directory`));
    assert.is(r.stdout, '', 'no {"pid":N}: no VMM was left running');
    assert.not.ok(existsSync(config.controlSocket), 'no control socket');
    assert.not.ok(existsSync(config.serialOutput), 'the VM was never built');
  }
  const usage = spawnSync(nativeExecutable('vc-vmm'), ['run', '--config', '-', '--cgroup'], { input: '{}', encoding: 'utf8' });
  assert.is(usage.status, 2);
  assert.match(usage.stderr, /unexpected argument --cgroup/);
});

test.run();
