import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { PodRecord } from '../../../src/model/records.js';
import { PodStore } from '../../../src/store/pod-store.js';
import { acquireLock } from '../../../src/store/lock.js';
import { writeFileAtomic } from '../../../src/store/atomic.js';
import { VcError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { codeOf } from '../../helpers/errors.js';

function record(id: string): PodRecord {
  const now = new Date().toISOString();
  return {
    version: 1, id, hypervisor: 'qemu', state: 'ready', createdAt: now, updatedAt: now,
    config: { id, hypervisor: 'auto', vcpus: 1, memoryMiB: 256, network: { mode: 'none' }, containers: [] },
    boot: { kernelPath: '/k', kernelRelease: '6.1', initrdPath: '/i', initrdDigest: 'd' },
  };
}


test('create, read back, update and remove a pod record', async () => {
  const tmp = tempDir();
  try {
    const store = new PodStore(tmp.path);
    await store.create(record('a'));
    const read = await store.read('a');
    assert.is(read.state, 'ready');
    read.state = 'running';
    await store.write(read);
    assert.is((await store.read('a')).state, 'running');
    assert.equal(await store.ids(), ['a']);
    await store.remove('a');
    assert.equal(await store.ids(), []);
    assert.is(await codeOf(store.read('a')), 'POD_NOT_FOUND');
  } finally {
    tmp.remove();
  }
});

test('creating an existing pod fails with POD_EXISTS and leaves no temp directory', async () => {
  const tmp = tempDir();
  try {
    const store = new PodStore(tmp.path);
    await store.create(record('a'));
    assert.is(await codeOf(store.create(record('a'))), 'POD_EXISTS');
    assert.equal(readdirSync(`${tmp.path}/pods`), ['a']);
  } finally {
    tmp.remove();
  }
});

test('a corrupt state file is reported as STATE_CORRUPT with its path', async () => {
  const tmp = tempDir();
  try {
    const store = new PodStore(tmp.path);
    await store.create(record('a'));
    writeFileSync(store.paths('a').state, '{"version": 1, "id": "a"');
    try {
      await store.read('a');
      assert.unreachable('corrupt state was accepted');
    } catch (err) {
      assert.is((err as VcError).code, 'STATE_CORRUPT');
      assert.match((err as Error).message, /state\.json/);
    }
  } finally {
    tmp.remove();
  }
});

test('atomic writes leave only the final file', async () => {
  const tmp = tempDir();
  try {
    await writeFileAtomic(`${tmp.path}/f.json`, 'one');
    await writeFileAtomic(`${tmp.path}/f.json`, 'two');
    assert.equal(readdirSync(tmp.path), ['f.json']);
  } finally {
    tmp.remove();
  }
});

test('a lock held by another process times out here, and is released when that process dies', async () => {
  const tmp = tempDir();
  const lockPath = `${tmp.path}/lock`;
  const storeUrl = new URL('../../../src/store/lock.js', import.meta.url).href;
  const holder = spawn(process.execPath, ['--input-type=module', '-e',
    `const { acquireLock } = await import(${JSON.stringify(storeUrl)});
     await acquireLock(${JSON.stringify(lockPath)}, 'test');
     console.log('locked'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [chunk] = await once(holder.stdout!, 'data');
    assert.is(String(chunk).trim(), 'locked');
    const started = Date.now();
    const err = await acquireLock(lockPath, 'pod t', { timeoutMs: 200 }).then(() => undefined, (e: VcError) => e);
    assert.is(err?.code, 'LOCK_TIMEOUT');
    assert.match(err!.message, /pod t is locked/);
    assert.ok(Date.now() - started >= 190);
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    const lock = await acquireLock(lockPath, 'pod t', { timeoutMs: 2000 });
    await lock.release();
  } finally {
    holder.kill('SIGKILL');
    tmp.remove();
  }
});

test('an aborted wait for a lock fails with ABORTED', async () => {
  const tmp = tempDir();
  try {
    const first = await acquireLock(`${tmp.path}/lock`, 'x');
    // flock is per open file description, so a second open in this process contends too.
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const code = await codeOf(acquireLock(`${tmp.path}/lock`, 'x', { signal: controller.signal, timeoutMs: 5000 }));
    assert.is(code, 'ABORTED');
    await first.release();
  } finally {
    tmp.remove();
  }
});

test.run();
