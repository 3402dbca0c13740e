import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir, makeTempDir, publishDir, removeStaleTemps, writeFileAtomic } from '../../../src/guest/cache.js';
import { GuestError } from '../../../src/guest/errors.js';

const root = mkdtempSync(join(tmpdir(), 'vc-cache-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('cacheDir: VC_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
  assert.is(cacheDir({ VC_CACHE_DIR: '/x/vc', XDG_CACHE_HOME: '/xdg' }), '/x/vc');
  assert.is(cacheDir({ XDG_CACHE_HOME: '/xdg' }), '/xdg/virtcontainers');
  assert.is(cacheDir({ XDG_CACHE_HOME: 'relative/ignored' }), join(homedir(), '.cache', 'virtcontainers'));
  assert.is(cacheDir({}), join(homedir(), '.cache', 'virtcontainers'));
});

test('writeFileAtomic writes chunks, creates the directory, sets the mode, leaves no temp file', async () => {
  const path = join(root, 'a', 'b', 'file.bin');
  await writeFileAtomic(path, [Buffer.from('hello '), Buffer.alloc(0), Buffer.from('world')], { mode: 0o600 });
  assert.is(readFileSync(path, 'utf8'), 'hello world');
  assert.is(statSync(path).mode & 0o777, 0o600);
  await writeFileAtomic(path, Buffer.from('replaced'));
  assert.is(readFileSync(path, 'utf8'), 'replaced');
  assert.equal(readdirSync(join(root, 'a', 'b')), ['file.bin']);
});

test('writeFileAtomic failure: target untouched, temp file removed, CACHE_WRITE_FAILED', async () => {
  // A non-empty directory at the target makes the final rename fail after the data was written.
  const dir = join(root, 'blocked');
  const target = join(dir, 'target');
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'keep'), 'kept');
  try {
    await writeFileAtomic(target, Buffer.from('data'));
    assert.unreachable('rename onto a directory must fail');
  } catch (err) {
    assert.instance(err, GuestError);
    assert.is((err as GuestError).code, 'CACHE_WRITE_FAILED');
    assert.match((err as Error).message, target);
  }
  assert.equal(readdirSync(dir), ['target']);
  assert.is(readFileSync(join(target, 'keep'), 'utf8'), 'kept');
});

test('publishDir: first one wins, the loser is discarded', async () => {
  const parent = join(root, 'pub');
  const first = await makeTempDir(parent, 'pkg');
  writeFileSync(join(first, 'x'), '1');
  const second = await makeTempDir(parent, 'pkg');
  writeFileSync(join(second, 'x'), '2');
  assert.match(first, /\/\.tmp-pkg-/);
  assert.is(await publishDir(first, join(parent, 'final')), 'created');
  assert.is(await publishDir(second, join(parent, 'final')), 'existing');
  assert.is(readFileSync(join(parent, 'final', 'x'), 'utf8'), '1');
  assert.equal(readdirSync(parent), ['final']);
});

test('removeStaleTemps removes only old temp files and dirs', async () => {
  const dir = join(root, 'stale');
  mkdirSync(join(dir, '.tmp-pkg-old', 'deep'), { recursive: true });
  mkdirSync(join(dir, '.tmp-pkg-young'), { recursive: true });
  mkdirSync(join(dir, 'pkg_1.0'), { recursive: true });
  writeFileSync(join(dir, '.x.cpio.abc.tmp'), 'half');
  writeFileSync(join(dir, 'kept.cpio'), 'done');
  writeFileSync(join(dir, '.hidden'), 'not a temp');
  const old = new Date(Date.now() - 2 * 3600_000);
  for (const n of ['.tmp-pkg-old', '.x.cpio.abc.tmp', 'pkg_1.0', 'kept.cpio', '.hidden']) utimesSync(join(dir, n), old, old);
  assert.equal((await removeStaleTemps(dir)).sort(), ['.tmp-pkg-old', '.x.cpio.abc.tmp']);
  assert.equal(readdirSync(dir).sort(), ['.hidden', '.tmp-pkg-young', 'kept.cpio', 'pkg_1.0']);
  assert.equal(await removeStaleTemps(join(root, 'does-not-exist')), []);
});

test.run();
