// `vc-vmm run --cgroup` puts the VMM (and so its guest RAM) in the pod's group before the VM
// exists, with the freestanding test guest; it needs KVM, so scripts/test.js runs it where the test
// guests run (test/helpers/kvm-host.ts). Group creation itself: test/native/cgroup.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { cgroupPids, createPodCgroup, removePodCgroup } from '../../src/host/cgroup.js';
import type { CgroupPaths } from '../../src/model/cgroup.js';
import { nativeExecutable, packageRoot } from '../../src/native.js';
import { alive, cgroupTest, groupDir, groupName, limits, MiB, prefix, read, removeLeftoverGroupsAfter, support } from '../helpers/cgroups.js';
import { requireTestGuestHost } from '../helpers/kvm-host.js';
import { withoutKernelThreads } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const testGuest = join(packageRoot, 'build/Release/testguest/vctest.bzImage');
const dir = tempDir('vc-cgvmm');
removeLeftoverGroupsAfter(() => dir.remove());
requireTestGuestHost();

function vmmTest(name: string, fn: () => Promise<void>) {
  cgroupTest(name, async () => {
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

function memoryCharged(cg: CgroupPaths): number {
  const d = groupDir(cg, 'memory');
  return Number(read(join(d, support.version === 2 ? 'memory.current' : 'memory.usage_in_bytes')));
}

vmmTest('vc-vmm run --detach --cgroup: the VMM is in the group before the VM exists, stops on the control socket, the group goes', async () => {
  const cg = createPodCgroup(groupName('vmm'), limits);
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
  const cg = createPodCgroup(groupName('fg'), limits);
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
  const missing = join(support.version === 2 ? support.root : support.version === 1 ? support.roots.pids : '/', 'virtcontainers', groupName('missing'));
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
