// src/host/reap.ts and the process identity of src/host/process.ts with real processes (no VMs):
// `node` processes whose argv names a temp pod directory stand in for VMMs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { reapPod } from '../../../src/host/reap.js';
import { isAlive, isSameProcess, processStartTime, selfIdentity } from '../../../src/host/process.js';
import type { PodResources } from '../../../src/model/records.js';
import { tempDir } from '../../helpers/tmp.js';

const children: ChildProcess[] = [];

/** A long-running process with `args` in its argv (as a VMM names its sockets). */
function fakeVmm(...args: string[]): ChildProcess & { pid: number } {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', ...args], { stdio: 'ignore' });
  children.push(child);
  if (child.pid === undefined) throw new Error('spawn failed');
  return child as ChildProcess & { pid: number };
}

/** Alive and not a zombie (a killed child stays a zombie until this process reaps it). */
function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && isAlive(child.pid!) && existsSync(`/proc/${child.pid}/cmdline`) &&
    spawnSync('cat', [`/proc/${child.pid}/cmdline`]).stdout.length > 0;
}

async function exited(child: ChildProcess): Promise<string | null> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return child.signalCode;
}

let tmp: ReturnType<typeof tempDir>;
let podDir: string;
let resources: PodResources;

test.before.each(() => {
  tmp = tempDir('vc-reap');
  podDir = `${tmp.path}/pods/p`;
  mkdirSync(podDir, { recursive: true });
  resources = { marker: `${podDir}/`, files: [`${podDir}/qmp.sock`, `${podDir}/vmm.pid`], pidFile: `${podDir}/vmm.pid` };
});
test.after.each(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  tmp.remove();
});

test('reapPod kills every process whose command line names the pod directory, and removes the files', async () => {
  const a = fakeVmm(`${podDir}/qmp.sock`);
  const b = fakeVmm(`-chardev=socket,path=${podDir}/agent.0.sock`);
  writeFileSync(`${podDir}/qmp.sock`, '');
  const reaped = await reapPod(resources);
  assert.is(await exited(a), 'SIGKILL');
  assert.is(await exited(b), 'SIGKILL');
  assert.ok(reaped.includes(`process ${a.pid} (node, found by command line)`), reaped.join('\n'));
  assert.ok(reaped.includes(`process ${b.pid} (node, found by command line)`), reaped.join('\n'));
  assert.ok(reaped.includes(`file ${podDir}/qmp.sock`));
  assert.not.ok(existsSync(`${podDir}/qmp.sock`));
});

test('reapPod spares processes of other pods: the marker ends with a slash (pods/p/ is not pods/pp/)', async () => {
  const other = fakeVmm(`${tmp.path}/pods/pp/qmp.sock`);
  const sibling = fakeVmm(`${tmp.path}/pods/p2/qmp.sock`);
  const mine = fakeVmm(`${podDir}/qmp.sock`);
  await reapPod(resources);
  assert.is(await exited(mine), 'SIGKILL');
  assert.ok(running(other), 'pods/pp is another pod');
  assert.ok(running(sibling), 'pods/p2 is another pod');
});

test('reapPod kills the process named by the pid file, and says so', async () => {
  const vmm = fakeVmm('-pidfile', `${podDir}/vmm.pid`);
  writeFileSync(`${podDir}/vmm.pid`, `${vmm.pid}\n`);
  const reaped = await reapPod(resources);
  assert.is(await exited(vmm), 'SIGKILL');
  assert.ok(reaped.includes(`process ${vmm.pid} (node, found by pid file)`), reaped.join('\n'));
  assert.ok(reaped.includes(`file ${podDir}/vmm.pid`));
  assert.not.ok(existsSync(`${podDir}/vmm.pid`));
});

test('a pid file naming a process that is not the pod\'s (a reused pid) kills nothing', async () => {
  const stranger = fakeVmm('--not-a-vmm');
  writeFileSync(`${podDir}/vmm.pid`, `${stranger.pid}\n`);
  const reaped = await reapPod(resources);
  assert.ok(running(stranger));
  assert.equal(reaped, [`file ${podDir}/vmm.pid`]);
});

test('recorded identity: the pid with its start time is reaped as recorded; another start time (pid reuse) is not, unless its argv names the pod', async () => {
  const recorded = fakeVmm(`${podDir}/qmp.sock`);
  const startTime = (await processStartTime(recorded.pid))!;
  let reaped = await reapPod(resources, [{ pid: recorded.pid, startTime }]);
  assert.ok(reaped.includes(`process ${recorded.pid} (node, found by recorded)`), reaped.join('\n'));
  assert.is(await exited(recorded), 'SIGKILL');

  // The recorded pid now belongs to someone else (another start time, argv not naming the pod).
  const stranger = fakeVmm('--someone-else');
  reaped = await reapPod(resources, [{ pid: stranger.pid, startTime: (await processStartTime(stranger.pid))! + 12345 }]);
  assert.ok(running(stranger), 'a process with another start time is not the recorded VMM');
  assert.equal(reaped, []);
  // Even with the right start time, a process that does not name the pod is left.
  reaped = await reapPod(resources, [{ pid: stranger.pid, startTime: (await processStartTime(stranger.pid))! }]);
  assert.ok(running(stranger));

  // A wrong start time does not save a process whose argv names the pod directory.
  const named = fakeVmm(`${podDir}/qmp.sock`);
  reaped = await reapPod(resources, [{ pid: named.pid, startTime: 1 }]);
  assert.is(await exited(named), 'SIGKILL');
  assert.ok(reaped.includes(`process ${named.pid} (node, found by command line)`), reaped.join('\n'));
});

test('dryRun: reports processes and files, kills and removes nothing', async () => {
  const vmm = fakeVmm(`${podDir}/qmp.sock`);
  writeFileSync(`${podDir}/qmp.sock`, '');
  const reaped = await reapPod(resources, [], { dryRun: true });
  assert.equal(reaped, [`process ${vmm.pid} (node, found by command line)`, `file ${podDir}/qmp.sock`]);
  assert.ok(running(vmm));
  assert.ok(existsSync(`${podDir}/qmp.sock`));
  // and then for real
  await reapPod(resources);
  assert.is(await exited(vmm), 'SIGKILL');
});

test('nothing of the pod: reapPod finds nothing and touches no file it was not told of', async () => {
  writeFileSync(`${podDir}/state.json`, '{}');
  assert.equal(await reapPod(resources), []);
  assert.ok(existsSync(`${podDir}/state.json`));
});

test('directories (a VMM jail root) are removed when empty, reported by dryRun, and one with something in it is an error naming it, left as it is', async () => {
  const jail = `${podDir}/vmm-root`;
  mkdirSync(jail);
  const withDirs = { ...resources, dirs: [jail] };
  assert.equal(await reapPod(withDirs, [], { dryRun: true }), [`directory ${jail}`]);
  assert.ok(existsSync(jail));
  assert.equal(await reapPod(withDirs), [`directory ${jail}`]);
  assert.not.ok(existsSync(jail));
  assert.equal(await reapPod(withDirs), [], 'gone already: nothing to report');
  mkdirSync(jail);
  writeFileSync(`${jail}/host-file`, 'x');
  try {
    await reapPod(withDirs);
    assert.unreachable('a non-empty jail root must not be removed');
  } catch (err) {
    assert.match((err as Error).message, `cannot remove ${jail}`);
  }
  assert.ok(existsSync(`${jail}/host-file`), 'nothing under it was deleted');
});

test('processStartTime and isSameProcess', async () => {
  const self = await selfIdentity();
  assert.is(self.pid, process.pid);
  assert.ok(Number.isSafeInteger(self.startTime) && self.startTime > 0, String(self.startTime));
  assert.is(await processStartTime(process.pid), self.startTime, 'stable');
  const child = fakeVmm(`${podDir}/x`);
  const t = (await processStartTime(child.pid))!;
  assert.ok(t >= self.startTime, 'a child starts after its parent');
  assert.ok(await isSameProcess(child.pid, t, `${podDir}/`));
  assert.ok(await isSameProcess(child.pid, undefined, `${podDir}/`), 'no start time: the command line alone (old records)');
  assert.not.ok(await isSameProcess(child.pid, t + 1, `${podDir}/`), 'another start time');
  assert.not.ok(await isSameProcess(child.pid, t, `${tmp.path}/pods/other/`), 'another marker');
  child.kill('SIGKILL');
  await exited(child);
  assert.is(await processStartTime(child.pid), undefined, 'a gone (reaped) process has none');
  assert.not.ok(await isSameProcess(child.pid, t, `${podDir}/`));
  // A command name with spaces and parentheses does not shift the fields.
  const oddName = `${tmp.path}/a b) (c`;
  copyFileSync('/bin/sleep', oddName);
  chmodSync(oddName, 0o755);
  const odd = spawn(oddName, ['30'], { stdio: 'ignore' });
  children.push(odd);
  assert.match(readFileSync(`/proc/${odd.pid}/stat`, 'utf8'), '(a b) (c)', 'the command name has a space and parentheses');
  const oddTime = await processStartTime(odd.pid!);
  assert.ok(oddTime !== undefined && oddTime >= t, String(oddTime));
});

test.run();
