// vc-test: judges-speed
// Container ops in one real pod, in sequence: pause/resume, stats, a live memory limit that
// OOM-kills, the process list, and host mounts copied in (nested files, symlinks, a read-only
// file bind, the size limit, a FIFO refused), kept current by the watcher and copied out after
// the container exited. On QEMU here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  containerProcesses, containerStats, containerStatus, createContainer, createPod, enterContainer, enterPod,
  pauseContainer, resumeContainer, startContainer, startPod, stopContainer, updateContainer, MOUNT_BYTES_LIMIT,
  copyContainerMountsOut, deleteContainer, watchContainerMounts,
} from '../../src/index.js';
import { codeOf } from '../helpers/errors.js';
import { readAll, teardownRoot } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { testHypervisor, testNetwork } from '../helpers/hypervisor.js';

const tmp = tempDir('vcops');
const root = tmp.path;
const pod = 'ops';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inContainer(id: string, script: string) {
  const proc = await enterContainer(pod, id, ['sh', '-c', script], { root });
  const [out, err, status] = await Promise.all([readAll(proc.stdout), readAll(proc.stderr), proc.wait()]);
  return { out, err, code: status.exitCode };
}

/** The counter as the VM sees it (outside the container, so it can be read while it is frozen). */
async function counter(): Promise<number> {
  const proc = await enterPod(pod, ['cat', '/run/vc/containers/counter/rootfs/tmp/count'], { root });
  const [out] = await Promise.all([readAll(proc.stdout), proc.wait()]);
  return Number(out.trim());
}

// The host side of the mounts.
const src = join(root, 'src');
const conf = join(root, 'app.conf');

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('one pod: a container with a host directory and a read-only host file mounted', async () => {
  mkdirSync(join(src, 'nested/deeper'), { recursive: true });
  writeFileSync(join(src, 'top.txt'), 'top\n');
  writeFileSync(join(src, 'nested/deeper/file.txt'), 'deep\n');
  symlinkSync('nested/deeper/file.txt', join(src, 'shortcut'));
  writeFileSync(conf, 'version=1\n');
  await createPod({ id: pod, hypervisor: testHypervisor, memoryMiB: 512, network: testNetwork }, { root });
  await startPod(pod, { root });
  await createContainer(pod, {
    id: 'counter',
    command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done'],
    mounts: [{ source: src, destination: '/srv/data' }, { source: conf, destination: '/etc/app.conf', readOnly: true }],
  }, { root });
  await startContainer(pod, 'counter', { root });
  const r = await inContainer('counter', 'cat /srv/data/top.txt /srv/data/nested/deeper/file.txt; readlink /srv/data/shortcut; cat /srv/data/shortcut /etc/app.conf');
  assert.is(r.out, 'top\ndeep\nnested/deeper/file.txt\ndeep\nversion=1\n', r.err);
  const w = await inContainer('counter', 'echo x > /etc/app.conf');
  assert.is.not(w.code, 0);
  assert.match(w.err, /Read-only file system/);
  assert.is((await inContainer('counter', 'echo w > /srv/data/new && cat /srv/data/new')).out, 'w\n', 'the directory mount is writable');
});

test('volumes: a changed host file shows within 2 s through the watcher; what the container wrote is copied out after it exited', async () => {
  const emptyDir = join(root, 'empty');
  const cfg = join(root, 'cfg');
  const termLog = join(root, 'termination-log');
  mkdirSync(emptyDir);
  writeFileSync(cfg, 'v1\n');
  writeFileSync(termLog, '');
  await createContainer(pod, {
    id: 'writer',
    command: ['sh', '-c', 'while [ "$(cat /etc/cfg)" != v2 ]; do sleep 0.1; done; mkdir /srv/empty/sub; echo result > /srv/empty/sub/out.txt; '
      + 'ln -s sub/out.txt /srv/empty/link; echo "saw v2" > /dev/termination-log; exit 3'],
    mounts: [{ source: emptyDir, destination: '/srv/empty' }, { source: cfg, destination: '/etc/cfg', readOnly: true }, { source: termLog, destination: '/dev/termination-log' }],
  }, { root });
  await startContainer(pod, 'writer', { root });
  let refreshedAt = 0;
  const watcher = watchContainerMounts(pod, 'writer', { root, intervalMs: 1000, onRefresh: () => { refreshedAt = Date.now(); } });
  try {
    await sleep(1200); // the watcher has walked the sources at least once
    const changedAt = Date.now();
    writeFileSync(cfg, 'v2\n');
    for (let i = 0; i < 100 && (await containerStatus(pod, 'writer', { root })).state !== 'stopped'; i++) await sleep(100);
    assert.ok(refreshedAt > 0, 'the watcher put the changed file');
    assert.ok(refreshedAt - changedAt < 2000, `in the guest ${refreshedAt - changedAt} ms after the change`);
  } finally {
    await watcher.close();
  }
  const status = await containerStatus(pod, 'writer', { root });
  assert.equal([status.state, status.exitCode], ['stopped', 3], 'the container saw v2 and exited');
  const report = await copyContainerMountsOut(pod, 'writer', { root });
  assert.equal({ ...report, bytes: undefined }, { files: 2, dirs: 1, symlinks: 1, bytes: undefined, skipped: [] }, 'the read-only file is not copied out');
  assert.is(readFileSync(join(emptyDir, 'sub/out.txt'), 'utf8'), 'result\n');
  assert.is(readlinkSync(join(emptyDir, 'link')), 'sub/out.txt');
  assert.is(readFileSync(termLog, 'utf8'), 'saw v2\n');
  assert.is(readFileSync(cfg, 'utf8'), 'v2\n');
  await deleteContainer(pod, 'writer', { root });
});

test('pause: the counter stops advancing and the status says paused; resume: it advances again', async () => {
  await sleep(300);
  assert.ok((await counter()) > 0, 'counting');
  const paused = await pauseContainer(pod, 'counter', { root });
  assert.is(paused.state, 'paused');
  assert.is((await containerStatus(pod, 'counter', { root })).state, 'paused');
  const atPause = await counter();
  await sleep(800);
  assert.is(await counter(), atPause, 'no progress while paused');
  assert.is(await codeOf(pauseContainer(pod, 'counter', { root })), 'ILLEGAL_TRANSITION');
  assert.is(await codeOf(enterContainer(pod, 'counter', ['true'], { root })), 'ILLEGAL_STATE');
  const resumed = await resumeContainer(pod, 'counter', { root });
  assert.is(resumed.state, 'running');
  await sleep(500);
  assert.ok((await counter()) > atPause + 3, 'counting again');
});

test('stats: memory in use, cpu time growing; processes: the init and an exec\'d process', async () => {
  const first = await containerStats(pod, 'counter', { root });
  assert.ok(first.memory.usage! > 0, `memory.current ${first.memory.usage}`);
  assert.is(first.memory.limit, null, 'no memory limit');
  assert.ok(Object.keys(first.memory.stat).includes('anon'));
  assert.ok('oom_kill' in first.memory.events);
  assert.ok(first.pids.current! >= 1);
  assert.ok(first.cpu.usageUsec! > 0);
  assert.ok(Array.isArray(first.io));
  await inContainer('counter', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done');
  const second = await containerStats(pod, 'counter', { root });
  assert.ok(second.cpu.usageUsec! > first.cpu.usageUsec!, `cpu usage grows: ${first.cpu.usageUsec} -> ${second.cpu.usageUsec}`);

  const init = (await containerStatus(pod, 'counter', { root })).pid!;
  const sleeper = await enterContainer(pod, 'counter', ['sleep', '300'], { root });
  const pids = await containerProcesses(pod, 'counter', { root });
  assert.ok(pids.includes(init), `init ${init} in ${pids}`);
  assert.ok(pids.includes(sleeper.pid), `exec'd ${sleeper.pid} in ${pids}`);
  await stopContainer(pod, 'counter', { root, timeoutMs: 1000 });
  await sleeper.wait();
});

test('update: a memory limit set live is enforced — the allocation is OOM-killed', async () => {
  await createContainer(pod, { id: 'hog', command: ['sleep', '1000'] }, { root });
  await startContainer(pod, 'hog', { root });
  await updateContainer(pod, 'hog', { limits: { memoryMiB: 24, pids: 64 } }, { root });
  const stats = await containerStats(pod, 'hog', { root });
  assert.is(stats.memory.limit, 24 * 1024 * 1024);
  assert.is(stats.pids.limit, 64);
  assert.is(await codeOf(updateContainer(pod, 'hog', { limits: { memoryMiB: 1 } }, { root })), 'INVALID_CONFIG');
  const proc = await enterContainer(pod, 'hog', ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\000" a); echo survived ${#x}'], { root });
  const [out] = await Promise.all([readAll(proc.stdout), proc.wait()]);
  assert.not.match(out, /survived/);
  let status = await containerStatus(pod, 'hog', { root });
  for (let i = 0; i < 50 && status.state !== 'stopped'; i++) {
    await sleep(100);
    status = await containerStatus(pod, 'hog', { root });
  }
  assert.is(status.state, 'stopped', 'memory.oom.group takes the whole container');
  assert.ok(status.oomKilled, `oomKilled: ${JSON.stringify(status)}`);
});

test('mounts refused before anything is made: over the size limit, a FIFO', async () => {
  const big = join(root, 'big');
  writeFileSync(big, '');
  truncateSync(big, MOUNT_BYTES_LIMIT + 1); // sparse: the walk counts sizes, it reads nothing
  let err = await createContainer(pod, { id: 'big', command: ['true'], mounts: [{ source: big, destination: '/big' }] }, { root }).catch((e: Error & { code?: string }) => e);
  assert.is((err as { code?: string }).code, 'INVALID_CONFIG');
  assert.match((err as Error).message, `mounts[0] (${big} -> /big): ${big} makes ${MOUNT_BYTES_LIMIT + 1} bytes`);
  const fifo = join(root, 'fifo');
  assert.is(spawnSync('mkfifo', [fifo]).status, 0);
  err = await createContainer(pod, { id: 'fifo', command: ['true'], mounts: [{ source: fifo, destination: '/f' }] }, { root }).catch((e: Error) => e);
  assert.is((err as { code?: string }).code, 'INVALID_CONFIG');
  assert.match((err as Error).message, `${fifo} is a FIFO`);
  assert.is(await codeOf(containerStatus(pod, 'big', { root })), 'CONTAINER_NOT_FOUND');
  assert.is(await codeOf(containerStatus(pod, 'fifo', { root })), 'CONTAINER_NOT_FOUND');
});

test.run();
