// src/api/mount-diff.ts and src/store/mount-manifest.ts: what a refresh of a container's mounts
// does, from real host trees walked by planMounts and changed between walks: changed files put
// again, deleted entries removed (only the outermost), a kind change removed then put, nothing
// when nothing changed, a source that changed kind refused; the manifest written and read back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planMounts, type MountPlan } from '../../../src/api/container-files.js';
import { diffMounts, hasChanges, manifestOf } from '../../../src/api/mount-diff.js';
import { manifestPath, readManifest, writeManifest } from '../../../src/store/mount-manifest.js';
import { PodStore } from '../../../src/store/pod-store.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir('vc-mdiff');
let n = 0;
const fresh = () => {
  const dir = join(tmp.path, `t${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const mount = (source: string, readOnly = false) => ({ source, destination: '/data', readOnly });
const summary = (plans: MountPlan[], before: ReturnType<typeof manifestOf> | undefined) =>
  diffMounts(before, plans).map((c) => ({ removes: c.removes, puts: c.puts.map((e) => `${e.kind}:${e.path}`) }));

test.after(() => tmp.remove());

test('nothing changed: no changes, and no work', async () => {
  const src = fresh();
  mkdirSync(join(src, 'd'));
  writeFileSync(join(src, 'd/f'), 'x');
  symlinkSync('d/f', join(src, 'l'));
  const before = manifestOf(await planMounts([mount(src)]));
  const again = await planMounts([mount(src)]);
  assert.equal(summary(again, before), [{ removes: [], puts: [] }]);
  assert.not.ok(hasChanges(diffMounts(before, again)));
});

test('a file rewritten (same size), touched, replaced by rename, chmod-ed; a new file; a retargeted symlink: each put again, nothing else', async () => {
  const src = fresh();
  for (const f of ['same-size', 'touched', 'renamed', 'moded', 'untouched']) writeFileSync(join(src, f), 'aaaa');
  symlinkSync('one', join(src, 'link'));
  const before = manifestOf(await planMounts([mount(src)]));
  await new Promise((r) => setTimeout(r, 20)); // a later mtime even on coarse clocks
  writeFileSync(join(src, 'same-size'), 'bbbb');
  const t = new Date(Date.now() + 5000);
  utimesSync(join(src, 'touched'), t, t);
  writeFileSync(join(src, 'tmp'), 'aaaa');
  renameSync(join(src, 'tmp'), join(src, 'renamed'));
  chmodSync(join(src, 'moded'), 0o600);
  writeFileSync(join(src, 'new'), '');
  unlinkSync(join(src, 'link'));
  symlinkSync('two', join(src, 'link'));
  const after = await planMounts([mount(src)]);
  assert.equal(summary(after, before), [{ removes: [], puts: ['symlink:link', 'file:moded', 'file:new', 'file:renamed', 'file:same-size', 'file:touched'] }]);
});

test('deleted entries removed, a directory once with what was in it; a kind change removed then put', async () => {
  const src = fresh();
  mkdirSync(join(src, 'gone/deep'), { recursive: true });
  writeFileSync(join(src, 'gone/deep/f'), 'x');
  writeFileSync(join(src, 'gone/g'), 'x');
  writeFileSync(join(src, 'file'), 'x');
  mkdirSync(join(src, 'was-dir'));
  writeFileSync(join(src, 'was-dir/inside'), 'x');
  writeFileSync(join(src, 'was-file'), 'x');
  symlinkSync('x', join(src, 'was-link'));
  const before = manifestOf(await planMounts([mount(src)]));
  rmSync(join(src, 'gone'), { recursive: true });
  unlinkSync(join(src, 'file'));
  rmSync(join(src, 'was-dir'), { recursive: true });
  writeFileSync(join(src, 'was-dir'), 'now a file');
  unlinkSync(join(src, 'was-file'));
  mkdirSync(join(src, 'was-file'));
  writeFileSync(join(src, 'was-file/new'), 'x');
  unlinkSync(join(src, 'was-link'));
  writeFileSync(join(src, 'was-link'), 'x');
  const after = await planMounts([mount(src)]);
  // A symlink becoming a file needs no remove: put_file replaces a symlink in place.
  assert.equal(summary(after, before), [{
    removes: ['file', 'gone', 'was-dir', 'was-file'],
    puts: ['file:was-dir', 'dir:was-file', 'file:was-file/new', 'file:was-link'],
  }]);
});

test('a file source: its content changed is one put of path ""; a source that changed kind is refused naming the mount', async () => {
  const dir = fresh();
  const file = join(dir, 'conf');
  writeFileSync(file, 'v1');
  const before = manifestOf(await planMounts([mount(file, true)]));
  writeFileSync(file, 'v2, longer');
  assert.equal(summary(await planMounts([mount(file, true)]), before), [{ removes: [], puts: ['file:'] }]);
  rmSync(file);
  mkdirSync(file);
  try {
    diffMounts(before, await planMounts([mount(file, true)]));
    assert.unreachable('a kind change');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'INVALID_CONFIG');
    assert.match((err as Error).message, `mounts[0] (${file} -> /data): the source was a file when the container was created and is now a directory`);
  }
});

test('no manifest: everything put, nothing removed (what the guest has is unknown)', async () => {
  const src = fresh();
  writeFileSync(join(src, 'a'), 'x');
  assert.equal(summary(await planMounts([mount(src)]), undefined), [{ removes: [], puts: ['dir:', 'file:a'] }]);
});

test('the manifest: written atomically beside the container record, read back the same; a corrupt one is STATE_CORRUPT naming the file', async () => {
  const root = fresh();
  const store = new PodStore(root);
  mkdirSync(join(store.paths('p').dir, 'containers'), { recursive: true });
  const src = fresh();
  writeFileSync(join(src, '__proto__'), 'a name that must stay a name');
  const manifest = manifestOf(await planMounts([mount(src)]));
  assert.is(await readManifest(store, 'p', 'c'), undefined);
  await writeManifest(store, 'p', 'c', manifest);
  assert.equal(await readManifest(store, 'p', 'c'), manifest);
  assert.equal(summary(await planMounts([mount(src)]), await readManifest(store, 'p', 'c')), [{ removes: [], puts: [] }]);
  assert.ok(manifestPath(store, 'p', 'c').endsWith('/containers/c.mounts'));
  writeFileSync(manifestPath(store, 'p', 'c'), '{"version":1,"binds":[{}]}');
  try {
    await readManifest(store, 'p', 'c');
    assert.unreachable('corrupt');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'STATE_CORRUPT');
    assert.match((err as Error).message, manifestPath(store, 'p', 'c'));
  }
  assert.ok(readFileSync(manifestPath(store, 'p', 'c'), 'utf8').length > 0);
});

test.run();
