// The image cache key the shim derives from containerd's overlay snapshot mounts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotCacheKey } from '../../../src/shim/rootfs.js';
import { keyedDirectoryDigest, hashDirectory } from '../../../src/guest/image/dir-source.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir('vcrootfs');
const dir = (name: string) => {
  const path = join(tmp.path, name);
  mkdirSync(path, { recursive: true });
  return path;
};
const overlay = (lower: string[], upper: string) => ({
  type: 'overlay', source: 'overlay', target: '',
  options: ['index=off', `workdir=${dir('work')}`, `upperdir=${upper}`, `lowerdir=${lower.join(':')}`],
});

test('one overlay with an empty upper directory: a key naming every lower layer', async () => {
  const key = await snapshotCacheKey([overlay([dir('l2'), dir('l1')], dir('up'))]);
  assert.type(key, 'string');
  assert.ok(key!.includes(join(tmp.path, 'l2')) && key!.includes(join(tmp.path, 'l1')), key);
  assert.equal(await snapshotCacheKey([overlay([dir('l2'), dir('l1')], dir('up'))]), key, 'stable');
  assert.not.equal(await snapshotCacheKey([overlay([dir('l1'), dir('l2')], dir('up'))]), key, 'layer order matters');
});

test('a lower directory made again at the same path gets a new key', async () => {
  const before = await snapshotCacheKey([overlay([dir('again')], dir('up2'))]);
  rmSync(join(tmp.path, 'again'), { recursive: true });
  await new Promise((r) => setTimeout(r, 20));
  const after = await snapshotCacheKey([overlay([dir('again')], dir('up2'))]);
  assert.ok(before && after);
  assert.not.equal(after, before);
});

test('no key when the upper directory has content, for other mounts, or a missing layer', async () => {
  const up = dir('busy');
  writeFileSync(join(up, 'file'), 'x');
  assert.is(await snapshotCacheKey([overlay([dir('l1')], up)]), undefined);
  assert.is(await snapshotCacheKey([{ type: 'bind', source: dir('l1'), target: '', options: ['rbind'] }]), undefined);
  assert.is(await snapshotCacheKey([overlay([dir('l1')], dir('u3')), overlay([dir('l2')], dir('u4'))]), undefined);
  assert.is(await snapshotCacheKey([overlay([join(tmp.path, 'missing')], dir('u5'))]), undefined);
  assert.is(await snapshotCacheKey([]), undefined);
});

test('a keyed digest is never a content digest of the same tree', async () => {
  const tree = dir('tree');
  writeFileSync(join(tree, 'a'), 'a');
  const content = await hashDirectory(tree);
  assert.not.equal(keyedDirectoryDigest(tree), content);
  assert.equal(keyedDirectoryDigest('k'), keyedDirectoryDigest('k'));
  assert.not.equal(keyedDirectoryDigest('k'), keyedDirectoryDigest('k2'));
});

test.after(() => tmp.remove());
test.run();
