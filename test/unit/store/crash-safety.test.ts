// The store's crash-safety rules: locks follow the file their path names, record versions are
// checked (newer refused, naming the file and both versions), removal renames first, and a write
// never brings a removed pod back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, renameSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RECORD_VERSION, type ContainerRecord, type PodRecord } from '../../../src/model/records.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { PodStore } from '../../../src/store/pod-store.js';
import { acquireLock, tryLock } from '../../../src/store/lock.js';
import { checkRecord } from '../../../src/store/record-version.js';
import { VcError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { codeOf, expectCode } from '../../helpers/errors.js';

function record(id: string, version: 1 | 2 = 2): PodRecord {
  const now = new Date().toISOString();
  return {
    version, id, hypervisor: 'qemu', state: 'ready', createdAt: now, updatedAt: now,
    config: { id, hypervisor: 'auto', vcpus: 1, memoryMiB: 256, network: { mode: 'none' }, containers: [] },
    boot: { kernelPath: '/k', kernelRelease: '6.1', initrdPath: '/i', initrdDigest: 'd' },
  };
}

async function inTemp(body: (dir: string) => Promise<void>): Promise<void> {
  const tmp = tempDir('vc-store');
  try {
    await body(tmp.path);
  } finally {
    tmp.remove();
  }
}

// --- locks --------------------------------------------------------------------------------------

test('tryLock: null while the lock is held, a lock once it is released', () => inTemp(async (dir) => {
  const path = `${dir}/lock`;
  const held = await acquireLock(path, 'x');
  assert.is(await tryLock(path), null);
  await held.release();
  const mine = await tryLock(path);
  assert.ok(mine, 'free now');
  assert.is(await tryLock(path), null, 'and held by tryLock\'s lock');
  await mine!.release();
}));

for (const how of ['removed', 'replaced'] as const) {
  test(`acquireLock re-tries when the lock file was ${how} while it waited: the lock it returns is on the file at the path`, () => inTemp(async (dir) => {
    const path = `${dir}/lock`;
    const holder = await acquireLock(path, 'x');
    const inodeBefore = statSync(path).ino;
    let got = false;
    const waiting = acquireLock(path, 'x', { timeoutMs: 5000 }).then((lock) => {
      got = true;
      return lock;
    });
    await sleep(30); // the waiter has opened the old file and polls its flock
    assert.not.ok(got);
    if (how === 'removed') rmSync(path);
    else {
      writeFileSync(`${dir}/lock.new`, '');
      renameSync(`${dir}/lock.new`, path);
    }
    await holder.release(); // the waiter now wins the flock of a file no longer at `path`
    const lock = await waiting;
    assert.ok(existsSync(path));
    // (A removed file's inode number may be reused by the new one, so only a replacement is told by it.)
    if (how === 'replaced') assert.is.not(statSync(path).ino, inodeBefore, 'the path names the new file');
    // Held on the file at the path: another taker is refused there.
    assert.is(await tryLock(path), null, 'the returned lock is on the file the path names');
    await lock.release();
    const again = await tryLock(path);
    assert.ok(again);
    await again!.release();
  }));
}

test('acquireLock on a lock whose directory is gone fails ENOENT naming the path (a deleted pod stays deleted)', () => inTemp(async (dir) => {
  const path = `${dir}/pod/lock`;
  const err = await acquireLock(path, 'x').then(() => undefined, (e: NodeJS.ErrnoException) => e);
  assert.is(err?.code, 'ENOENT');
  assert.is(err?.path, path);
  assert.not.ok(existsSync(`${dir}/pod`));
}));

// --- record versions ----------------------------------------------------------------------------

test('a record of a newer version is STATE_UNSUPPORTED naming the file, its version and the one this reads', () => inTemp(async (dir) => {
  const store = new PodStore(dir);
  await store.create(record('a'));
  const path = store.paths('a').state;
  writeFileSync(path, JSON.stringify({ ...record('a'), version: RECORD_VERSION + 97 }));
  const err = await expectCode(store.read('a'), VcError, 'STATE_UNSUPPORTED');
  assert.match(err.message, path);
  assert.match(err.message, `record version ${RECORD_VERSION + 97}`);
  assert.match(err.message, `reads up to ${RECORD_VERSION}`);
}));

test('record versions 1 and 2 are read; a write records the current version', () => inTemp(async (dir) => {
  const store = new PodStore(dir);
  await store.create(record('a', 1));
  const old = await store.read('a');
  assert.is(old.version, 1);
  await store.write(old);
  assert.is((await store.read('a')).version, RECORD_VERSION);
  assert.is(RECORD_VERSION, 2);
}));

test('a version that is not a positive integer, or JSON that is not an object, is STATE_CORRUPT naming the file', () => {
  for (const text of ['{"version": 0}', '{"version": "2"}', '{}', '[1]', 'null', '{"version": 1.5}']) {
    try {
      checkRecord(text, '/x/state.json', 'pod x', () => {});
      assert.unreachable(`accepted ${text}`);
    } catch (err) {
      assert.is((err as VcError).code, 'STATE_CORRUPT', text);
      assert.match((err as Error).message, '(/x/state.json) is unreadable');
    }
  }
});

test('a container record of a newer version is refused too, naming its file', () => inTemp(async (dir) => {
  const pods = new PodStore(dir);
  await pods.create(record('p'));
  const containers = new ContainerStore(pods);
  const c = { version: 2, id: 'c', podId: 'p', state: 'created' } as unknown as ContainerRecord;
  await containers.write(c);
  const path = `${pods.paths('p').dir}/containers/c.json`;
  writeFileSync(path, JSON.stringify({ ...c, version: 3 }));
  const err = await expectCode(containers.read('p', 'c'), VcError, 'STATE_UNSUPPORTED');
  assert.match(err.message, path);
  assert.match(err.message, 'record version 3');
}));

// --- removal and writes after it -----------------------------------------------------------------

test('PodStore.remove renames the directory away first, then removes it: no .deleted-* left, the id reusable', () => inTemp(async (dir) => {
  const store = new PodStore(dir);
  await store.create(record('a'));
  writeFileSync(`${store.paths('a').dir}/console.log`, 'x');
  const seen: string[] = [];
  const watcher = watch(`${dir}/pods`, (_event, name) => {
    if (name) seen.push(String(name));
  });
  try {
    await store.remove('a');
    await sleep(50);
  } finally {
    watcher.close();
  }
  assert.ok(seen.some((n) => n.startsWith('.deleted-a-')), `the directory was renamed to .deleted-a-*: ${seen.join(' ')}`);
  assert.equal(readdirSync(`${dir}/pods`), [], 'nothing left, no .deleted-* either');
  assert.not.ok(await store.exists('a'));
  await store.remove('a'); // a missing pod: nothing to do
  await store.create(record('a'));
  assert.equal(await store.ids(), ['a']);
}));

test('ids() ignores half-made and half-removed directories', () => inTemp(async (dir) => {
  const store = new PodStore(dir);
  await store.create(record('a'));
  rmSync(`${dir}/pods/.deleted-b-1234`, { force: true });
  writeFileSync(`${dir}/pods/.new-c-1`, '');
  assert.equal(await store.ids(), ['a']);
}));

test('a write to a removed pod fails (ENOENT) and does not recreate its directory', () => inTemp(async (dir) => {
  const store = new PodStore(dir);
  await store.create(record('a'));
  const stale = await store.read('a');
  await store.remove('a');
  assert.is(await codeOf(store.write(stale)), 'ENOENT');
  assert.not.ok(existsSync(store.paths('a').dir), 'the pod directory was not made again');
  const containers = new ContainerStore(store);
  const c = { version: 2, id: 'c', podId: 'a', state: 'created' } as unknown as ContainerRecord;
  assert.is(await codeOf(containers.write(c)), 'ENOENT');
  assert.not.ok(existsSync(store.paths('a').dir), 'nor by a container write');
  assert.equal(readdirSync(`${dir}/pods`), []);
}));

test.run();
