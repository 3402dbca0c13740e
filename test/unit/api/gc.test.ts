// src/api/gc.ts with the fake hypervisor, a temp state root and a temp image cache. The host's
// cgroups are not swept here (cgroupParents: [] or a temp directory): other pods and tests on
// this host may be setting up groups that are briefly empty, and graceMs: 0 would take them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gc, type GcItem, type GcOptions } from '../../../src/api/gc.js';
import { createContainer } from '../../../src/api/container.js';
import { createPod, startPod } from '../../../src/api/pod.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { isAlive } from '../../../src/host/process.js';
import { tempDir } from '../../helpers/tmp.js';
import { assertConsistent, fakePods, leaveInStep, type FakePods } from './fake-pods.js';

let pods: FakePods;
let cache: ReturnType<typeof tempDir>;
const children: ChildProcess[] = [];
test.before.each(() => {
  pods = fakePods();
  cache = tempDir('vc-gc-cache');
});
test.after.each(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await pods.done();
  cache.remove();
});

const HOUR = 3600_000;
const options = (extra: GcOptions = {}): GcOptions => ({ ...pods.options(), cacheDir: cache.path, cgroupParents: [], ...extra });

/** A cached image (disk + record) last used `ageMs` ago. */
function cachedImage(digest: string, ageMs: number): { disk: string; record: string } {
  const dir = join(cache.path, 'images');
  mkdirSync(dir, { recursive: true });
  const disk = join(dir, `${digest}.erofs`);
  const record = join(dir, `${digest}.json`);
  writeFileSync(disk, 'erofs image');
  writeFileSync(record, JSON.stringify({ digest }));
  const then = new Date(Date.now() - ageMs);
  utimesSync(disk, then, then);
  utimesSync(record, then, then);
  return { disk, record };
}

/** A "VMM" of pod `id` of this root: a real process whose argv names the pod directory. */
function vmmOf(id: string): ChildProcess & { pid: number } {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', `${pods.root}/pods/${id}/qmp.sock`], { stdio: 'ignore' });
  children.push(child);
  return child as ChildProcess & { pid: number };
}

/** Leaks of every kind gc knows (but cgroups), made by hand. */
async function leaks() {
  const podsDir = join(pods.root, 'pods');
  // A pod left `starting` by a dead caller, its VM live.
  await createPod({ id: 'half', hypervisor: 'qemu', network: 'none' }, pods.options());
  await leaveInStep(pods, 'half', 'starting', 'ready');
  // A running pod with a container: its image is in use.
  await createPod({ id: 'busy', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('busy', pods.options());
  await createContainer('busy', { id: 'c', rootfs: pods.rootfs('c'), command: ['/bin/true'] }, pods.options());
  const usedDigest = (await new ContainerStore(pods.store).read('busy', 'c')).image.digest;
  const used = cachedImage(usedDigest, 48 * HOUR);
  const unused = cachedImage('sha256:' + 'ab'.repeat(32), 48 * HOUR);
  const recent = cachedImage('sha256:' + 'cd'.repeat(32), 1 * HOUR);
  // Half-made and half-removed pod directories, and the temp file of a write cut short.
  mkdirSync(join(podsDir, '.new-x-0001'));
  mkdirSync(join(podsDir, '.deleted-y-0002'));
  const temp = join(pods.store.paths('busy').dir, '.state.json.0123456789ab.tmp');
  writeFileSync(temp, '{');
  // A VMM whose pod directory is gone.
  const orphan = vmmOf('gone');
  return { podsDir, used, unused, recent, temp, orphan };
}

const find = (items: GcItem[], kind: GcItem['kind'], match: string | RegExp) =>
  items.filter((i) => i.kind === kind && (typeof match === 'string' ? (i.path ?? i.what).includes(match) || i.what.includes(match) : match.test(i.what)));

test('dry run: every leak is reported, nothing is removed or killed', async () => {
  const l = await leaks();
  const report = await gc(options({ dryRun: true, graceMs: 0 }));
  assert.is(report.dryRun, true);
  assert.ok(report.items.every((i) => !i.removed), 'nothing removed');
  assert.is(find(report.items, 'pod', /pod half: a starting step interrupted \(process \d+ is gone\)/).length, 1, JSON.stringify(report.items, null, 1));
  assert.is(find(report.items, 'directory', '.new-x-0001').length, 1);
  assert.is(find(report.items, 'directory', '.deleted-y-0002').length, 1);
  assert.is(find(report.items, 'file', l.temp).length, 1);
  const proc = report.items.find((i) => i.kind === 'process' && i.pid === l.orphan.pid);
  assert.ok(proc, 'the orphan VMM is reported');
  assert.match(proc!.what, 'of pod gone, whose directory is gone');
  assert.equal(find(report.items, 'image', l.unused.disk).map((i) => i.path), [l.unused.disk]);
  assert.is(find(report.items, 'image', l.used.disk).length, 0, 'an image in use is no leak');
  assert.is(find(report.items, 'image', l.recent.disk).length, 0, 'a recently used image is kept');
  // Nothing changed.
  assert.ok(existsSync(join(l.podsDir, '.new-x-0001')) && existsSync(join(l.podsDir, '.deleted-y-0002')) && existsSync(l.temp));
  assert.ok(existsSync(l.unused.disk) && existsSync(l.unused.record));
  assert.ok(isAlive(l.orphan.pid) && l.orphan.exitCode === null && l.orphan.signalCode === null, 'the orphan still runs');
  assert.is((await pods.store.read('half')).state, 'starting');
  assert.equal(pods.fake.live().map((vm) => vm.podId).sort(), ['busy', 'half']);
});

test('gc with graceMs 0: each leak removed and reported removed; in-use things stay', async () => {
  const l = await leaks();
  const report = await gc(options({ graceMs: 0 }));
  assert.is(report.dryRun, false);
  const failed = report.items.filter((i) => !i.removed);
  assert.equal(failed, [], 'every item removed');
  // the interrupted start is settled: back to ready, its VM gone
  assert.is(find(report.items, 'pod', /pod half: a starting step interrupted .*: settled/).length, 1, JSON.stringify(report.items, null, 1));
  const half = await pods.store.read('half');
  assert.is(half.state, 'ready');
  assert.is(half.step, undefined);
  assert.equal(pods.fake.live().map((vm) => vm.podId), ['busy'], 'only the running pod\'s VM is left');
  // temps
  assert.not.ok(existsSync(join(l.podsDir, '.new-x-0001')));
  assert.not.ok(existsSync(join(l.podsDir, '.deleted-y-0002')));
  assert.not.ok(existsSync(l.temp));
  // the orphan VMM
  if (l.orphan.exitCode === null && l.orphan.signalCode === null) await once(l.orphan, 'exit');
  assert.is(l.orphan.signalCode, 'SIGKILL');
  assert.ok(report.items.some((i) => i.kind === 'process' && i.pid === l.orphan.pid && i.removed));
  // images
  assert.not.ok(existsSync(l.unused.disk) || existsSync(l.unused.record), 'the old unused image is gone');
  assert.ok(existsSync(l.used.disk) && existsSync(l.used.record), 'the image a container uses stays');
  assert.ok(existsSync(l.recent.disk), 'the recently used image stays');
  // the running pod and its container are untouched
  assert.is((await pods.store.read('busy')).state, 'running');
  assert.equal(await new ContainerStore(pods.store).ids('busy'), ['c']);
  await assertConsistent(pods);
  // and a second run finds nothing
  assert.equal((await gc(options({ graceMs: 0 }))).items, []);
});

test('the default grace period leaves fresh temp files and directories alone', async () => {
  await createPod({ id: 'a', hypervisor: 'qemu', network: 'none' }, pods.options());
  const podsDir = join(pods.root, 'pods');
  mkdirSync(join(podsDir, '.new-x-0001'));
  const temp = join(pods.store.paths('a').dir, '.state.json.0123456789ab.tmp');
  writeFileSync(temp, '{');
  const report = await gc(options());
  assert.equal(report.items, []);
  assert.ok(existsSync(join(podsDir, '.new-x-0001')) && existsSync(temp));
  // Aged past the grace period, they go.
  const old = new Date(Date.now() - 2 * 60_000);
  utimesSync(join(podsDir, '.new-x-0001'), old, old);
  utimesSync(temp, old, old);
  const later = await gc(options());
  assert.equal(later.items.map((i) => [i.kind, i.path, i.removed]), [['directory', join(podsDir, '.new-x-0001'), true], ['file', temp, true]]);
});

test('a stopped pod whose VMM process still runs: reported and reaped; an unreadable pod is reported, not removed', async () => {
  await createPod({ id: 'a', hypervisor: 'qemu', network: 'none' }, pods.options());
  writeFileSync(join(pods.store.paths('a').dir, 'agent.sock'), ''); // a stale socket the fake reaps
  await createPod({ id: 'bad', hypervisor: 'qemu', network: 'none' }, pods.options());
  writeFileSync(pods.store.paths('bad').state, 'not json');
  const report = await gc(options({ graceMs: 0 }));
  const a = report.items.find((i) => i.what.startsWith('pod a is ready but still has'));
  assert.ok(a?.removed, JSON.stringify(report.items, null, 1));
  assert.not.ok(existsSync(join(pods.store.paths('a').dir, 'agent.sock')));
  const bad = report.items.find((i) => i.what.startsWith('pod bad:'));
  assert.ok(bad && !bad.removed);
  assert.match(bad!.what, 'delete --force');
  assert.ok(existsSync(pods.store.paths('bad').state), 'gc does not remove a pod it cannot read');
});

test('cgroupParents scopes the cgroup sweep: an empty group in the given parent is swept, [] sweeps none', async () => {
  const parent = tempDir('vc-gc-cg');
  try {
    mkdirSync(join(parent.path, 'leftover'));
    assert.equal((await gc(options({ graceMs: 0, cgroupParents: [] }))).items, []);
    const report = await gc(options({ graceMs: 0, cgroupParents: [parent.path] }));
    // A plain directory is not a cgroup: the native removal refuses it, and gc says so.
    assert.equal(report.items.map((i) => [i.kind, i.path, i.removed]), [['cgroup', join(parent.path, 'leftover'), false]]);
    assert.match(report.items[0]!.error ?? '', /refusing to remove/, JSON.stringify(report.items));
    assert.ok(existsSync(join(parent.path, 'leftover')));
  } finally {
    parent.remove();
  }
});

test.run();
