// src/api/container-files.ts: the walk of a container's host mounts (what is copied, what is
// refused, the size limit), the chunking of files into put_file requests, and createContainer
// with mounts against a fake guest (binds sent, files put before `created`, a failure undone).
// Also the checking of container_stats answers (src/api/container-ops.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindsOf, fileChunks, MOUNT_BYTES_LIMIT, planMounts, PUT_CHUNK_BYTES, type MountPlan } from '../../../src/api/container-files.js';
import { parseContainerStats } from '../../../src/api/container-ops.js';
import { createContainer } from '../../../src/api/container.js';
import { createPod, startPod } from '../../../src/api/pod.js';
import { encodeRequest, MAX_PAYLOAD_SIZE } from '../../../src/agent/protocol.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { assertConsistent, fakePods, type FakePods } from './fake-pods.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir('vc-files');
let n = 0;
const fresh = () => {
  const dir = join(tmp.path, `t${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  return p.then(() => ({ message: 'resolved' }), (err: { code?: string; message: string }) => err);
}

const me = { uid: process.getuid!(), gid: process.getgid!() };
const mount = (source: string, destination = '/data', readOnly = false) => ({ source, destination, readOnly });
const paths = (plan: MountPlan) => plan.entries.map((e) => `${e.kind}:${e.path}`);

test.after(() => tmp.remove());

test('planMounts: a directory tree in copy order (parents first), modes and owners, symlinks kept', async () => {
  const src = fresh();
  mkdirSync(join(src, 'b/inner'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'hello');
  writeFileSync(join(src, 'b/inner/deep.bin'), Buffer.alloc(3000, 7));
  symlinkSync('../a.txt', join(src, 'b/link'));
  symlinkSync('/nowhere/at/all', join(src, 'dangling'));
  chmodSync(join(src, 'a.txt'), 0o4750);
  chmodSync(src, 0o710);
  const [plan] = await planMounts([mount(src, '/etc/conf', true)]);
  assert.is(plan!.kind, 'dir');
  assert.equal(paths(plan!), ['dir:', 'file:a.txt', 'dir:b', 'dir:b/inner', 'file:b/inner/deep.bin', 'symlink:b/link', 'symlink:dangling']);
  const byPath = new Map(plan!.entries.map((e) => [e.path, e]));
  assert.equal(byPath.get(''), { kind: 'dir', path: '', mode: 0o710, uid: me.uid, gid: me.gid });
  const { stamp, ...aTxt } = byPath.get('a.txt') as { stamp: string };
  assert.equal(aTxt, { kind: 'file', path: 'a.txt', hostPath: join(src, 'a.txt'), size: 5, mode: 0o4750, uid: me.uid, gid: me.gid });
  assert.match(stamp, /^\d+:5:[\d.]+:[\d.]+$/, 'inode, size, mtime, ctime');
  assert.equal(byPath.get('b/link'), { kind: 'symlink', path: 'b/link', uid: me.uid, gid: me.gid, target: '../a.txt' });
  assert.is(plan!.bytes, 3005);
  assert.equal(bindsOf([plan!]), [{ destination: '/etc/conf', kind: 'dir', readOnly: true }]);
});

test('planMounts: a file source (followed if it is a symlink) is one file entry with path ""', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'real.conf'), 'x=1\n');
  symlinkSync(join(dir, 'real.conf'), join(dir, 'link.conf'));
  const plans = await planMounts([mount(join(dir, 'link.conf'), '/etc/app.conf')]);
  chmodSync(join(dir, 'real.conf'), 0o640);
  assert.equal(plans[0]!.entries.length, 1);
  assert.equal(plans[0]!.entries[0], { kind: 'file', path: '', hostPath: join(dir, 'link.conf'), size: 4, mode: (plans[0]!.entries[0] as { mode: number }).mode, uid: me.uid, gid: me.gid, stamp: (plans[0]!.entries[0] as { stamp: string }).stamp });
  assert.is((await planMounts([mount(join(dir, 'link.conf'))]))[0]!.entries[0]!.kind === 'file' && ((await planMounts([mount(join(dir, 'link.conf'))]))[0]!.entries[0] as { mode: number }).mode, 0o640, 'the target\'s mode');
  assert.is(plans[0]!.kind, 'file');
  assert.equal(bindsOf(plans), [{ destination: '/etc/app.conf', kind: 'file', readOnly: false }]);
});

test('planMounts refuses FIFOs, sockets and devices, naming the mount and the path; a missing source', async () => {
  const src = fresh();
  mkdirSync(join(src, 'sub'));
  const fifo = join(src, 'sub/queue');
  assert.is(spawnSync('mkfifo', [fifo]).status, 0);
  let e = await errorOf(planMounts([mount(fresh()), mount(src, '/srv')]));
  assert.is(e.code, 'INVALID_CONFIG');
  assert.is(e.message, `mounts[1] (${src} -> /srv): ${fifo} is a FIFO: only regular files, directories and symlinks can be copied into a container`);
  e = await errorOf(planMounts([mount(fifo)]));
  assert.match(e.message, `mounts[0] (${fifo} -> /data): ${fifo} is a FIFO`);
  e = await errorOf(planMounts([mount('/dev/null')]));
  assert.match(e.message, '/dev/null is a character device');
  e = await errorOf(planMounts([mount(join(src, 'missing'))]));
  assert.is(e.code, 'INVALID_CONFIG');
  assert.is(e.message, `mounts[0] (${join(src, 'missing')} -> /data): source: does not exist`);
});

test('planMounts refuses a name that is not UTF-8 (it could not reach the guest unchanged)', async () => {
  const src = fresh();
  const bad = Buffer.concat([Buffer.from(join(src, 'x')), Buffer.from([0xff, 0xfe])]);
  writeFileSync(bad, 'x');
  const e = await errorOf(planMounts([mount(src)]));
  assert.is(e.code, 'INVALID_CONFIG');
  assert.match(e.message, 'the name is not valid UTF-8');
});

test('planMounts: the size limit counts every mount of the container and names where it was passed', async () => {
  assert.is(MOUNT_BYTES_LIMIT, 64 * 1024 * 1024);
  const a = fresh();
  const b = fresh();
  writeFileSync(join(a, 'one'), Buffer.alloc(600));
  writeFileSync(join(b, 'two'), Buffer.alloc(500));
  assert.is((await planMounts([mount(a), mount(b, '/b')], 1100)).length, 2, 'exactly at the limit is fine');
  const e = await errorOf(planMounts([mount(a), mount(b, '/b')], 1099));
  assert.is(e.code, 'INVALID_CONFIG');
  assert.is(e.message, `mounts[1] (${b} -> /b): ${join(b, 'two')} makes 1100 bytes (0.0 MiB) of files to copy into the container, over the limit of 1099 bytes (0.0 MiB) per container`);
});

test('fileChunks: offsets and sizes; an empty file is one empty chunk; the pieces make the file', async () => {
  const dir = fresh();
  const collect = async (path: string, size: number) => {
    const out: Array<{ offset: number; length: number }> = [];
    const parts: Buffer[] = [];
    for await (const c of fileChunks(path, size)) {
      out.push({ offset: c.offset, length: c.data.length });
      parts.push(Buffer.from(c.data));
    }
    return { out, joined: Buffer.concat(parts) };
  };
  writeFileSync(join(dir, 'empty'), '');
  assert.equal((await collect(join(dir, 'empty'), 4)).out, [{ offset: 0, length: 0 }]);
  const data = Buffer.from('0123456789');
  writeFileSync(join(dir, 'ten'), data);
  let r = await collect(join(dir, 'ten'), 4);
  assert.equal(r.out, [{ offset: 0, length: 4 }, { offset: 4, length: 4 }, { offset: 8, length: 2 }]);
  assert.equal(r.joined, data);
  r = await collect(join(dir, 'ten'), 5);
  assert.equal(r.out, [{ offset: 0, length: 5 }, { offset: 5, length: 5 }], 'an exact multiple ends without an empty chunk');
  const fifo = join(dir, 'fifo');
  spawnSync('mkfifo', [fifo]);
  const e = await errorOf((async () => { for await (const _ of fileChunks(fifo)) { /* never */ } })());
  assert.match(e.message, 'is no longer a regular file', 'a FIFO is neither waited on nor read');
});

test('PUT_CHUNK_BYTES: a whole chunk with the longest, worst-escaped path fits one agent frame', () => {
  assert.ok(PUT_CHUNK_BYTES >= 256 * 1024 && PUT_CHUNK_BYTES % 4096 === 0, String(PUT_CHUNK_BYTES));
  const frame = encodeRequest(1, 'put_file', {
    id: 'x'.repeat(64), bind: 127, path: '\u0001'.repeat(4096), kind: 'file', mode: 0o7777, uid: 4294967294, gid: 4294967294,
    data: Buffer.alloc(PUT_CHUNK_BYTES, 0xff).toString('base64'), offset: 2 ** 53 - 1, truncate: true,
  });
  assert.ok(frame.length - 12 <= MAX_PAYLOAD_SIZE, `payload ${frame.length - 12} of at most ${MAX_PAYLOAD_SIZE}`);
});

test('parseContainerStats: the typed answer; a wrong shape names the field', () => {
  const good = {
    cpu: { usageUsec: 10, userUsec: 6, systemUsec: 4, nrPeriods: null, nrThrottled: null, throttledUsec: null },
    memory: { usage: 4096, limit: null, swapUsage: 0, stat: { anon: 1, file: 2 }, events: { oom_kill: 0 } },
    pids: { current: 2, limit: 50 },
    io: [{ major: 254, minor: 0, rbytes: 1, wbytes: 2, rios: 3, wios: 4 }],
  };
  assert.equal(parseContainerStats(good), good);
  const bad = (mutate: (v: typeof good) => void) => {
    const v = structuredClone(good);
    mutate(v);
    try {
      parseContainerStats(v as never);
      return 'parsed';
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.match(bad((v) => { (v.cpu as Record<string, unknown>).usageUsec = 'x'; }), '"cpu.usageUsec" must be a non-negative number or null, got "x"');
  assert.match(bad((v) => { (v.memory.stat as Record<string, unknown>).anon = -1; }), '"memory.stat.anon"');
  assert.match(bad((v) => { (v as Record<string, unknown>).io = {}; }), '"io" must be an array');
  assert.match(bad((v) => { delete (v.io[0] as Record<string, unknown>).wios; }), '"io[0].wios"');
  assert.match(bad((v) => { (v as Record<string, unknown>).pids = null; }), '"pids" must be an object');
});

let pods: FakePods;

async function runningPod(): Promise<void> {
  pods = fakePods();
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('p', pods.options());
}

test('createContainer with mounts: binds staged, every entry put before the record says created', async () => {
  await runningPod();
  try {
    const src = fresh();
    mkdirSync(join(src, 'd'));
    writeFileSync(join(src, 'd/f'), 'content');
    symlinkSync('d/f', join(src, 'l'));
    const file = join(fresh(), 'single');
    writeFileSync(file, Buffer.alloc(PUT_CHUNK_BYTES + 10, 1));
    const status = await createContainer('p', {
      id: 'c', rootfs: pods.rootfs('img'), command: ['sleep', '9'],
      mounts: [{ source: src, destination: '/srv' }, { source: file, destination: '/etc/single', readOnly: true }],
    }, pods.options());
    assert.is(status.state, 'created');
    const guest = pods.fake.vmOf('p')!.guest;
    const puts = guest.putFiles.map((a) => [a.bind, a.path, a.kind, a.offset ?? null, a.truncate ?? null, typeof a.data === 'string' ? Buffer.from(a.data, 'base64').length : null]);
    assert.equal(puts, [
      [0, '', 'dir', null, null, null],
      [0, 'd', 'dir', null, null, null],
      [0, 'd/f', 'file', 0, true, 7],
      [0, 'l', 'symlink', null, null, null],
      [1, '', 'file', 0, true, PUT_CHUNK_BYTES],
      [1, '', 'file', PUT_CHUNK_BYTES, null, 10],
    ]);
    assert.is(guest.putFiles[3]!.target, 'd/f');
    const order = guest.requests.filter((r) => r.endsWith(':c'));
    assert.equal(order.slice(0, 2), ['create_container:c', 'put_file:c'], 'put after the create');
    const record = await new ContainerStore(pods.store).read('p', 'c');
    assert.equal(record.config.mounts, [{ source: src, destination: '/srv', readOnly: false }, { source: file, destination: '/etc/single', readOnly: true }]);
    await assertConsistent(pods);
  } finally {
    await pods.done();
  }
});

test('createContainer with mounts: a refused source creates nothing; a failed put undoes the create', async () => {
  await runningPod();
  try {
    const src = fresh();
    spawnSync('mkfifo', [join(src, 'pipe')]);
    const e = await errorOf(createContainer('p', { id: 'c', rootfs: pods.rootfs('img'), command: ['sleep', '9'], mounts: [{ source: src, destination: '/x' }] }, pods.options()));
    assert.is(e.code, 'INVALID_CONFIG');
    assert.match(e.message, `${join(src, 'pipe')} is a FIFO`);
    const guest = pods.fake.vmOf('p')!.guest;
    assert.not.ok(guest.requests.includes('create_container:c'), 'the guest was never asked');
    assert.equal(await new ContainerStore(pods.store).ids('p'), []);

    const ok = fresh();
    writeFileSync(join(ok, 'f'), 'x');
    guest.failOps.set('put_file', { code: 'CONTAINER_FAILED', message: 'container "c": put_file bind 0 (/x) "f": write: No space left on device' });
    const f = await errorOf(createContainer('p', { id: 'c', rootfs: pods.rootfs('img'), command: ['sleep', '9'], mounts: [{ source: ok, destination: '/x' }] }, pods.options()));
    assert.is(f.code, 'CONTAINER_FAILED');
    assert.ok(guest.requests.includes('delete_container:c'), 'the guest container was deleted');
    assert.equal(await new ContainerStore(pods.store).ids('p'), []);
    assert.is(pods.fake.vmOf('p')!.disks.size, 0);
    await assertConsistent(pods);
  } finally {
    await pods.done();
  }
});

test.run();
