// resolveImage on real images: an OCI layout built by umoci (3 layers: whiteout, opaque dir, the
// umoci-0.4.7 unpadded insert layer), its skopeo docker-archive and oci-archive, the default
// busybox image and a plain directory. The erofs results are unpacked with fsck.erofs --extract.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestError } from '../../../../src/guest/errors.js';
import { parseImageRef, resolveImage, type PreparedImage } from '../../../../src/guest/image/index.js';
import { expectCode } from '../../../helpers/errors.js';
import { buildRealImage, erofsMode, erofsNid, extractErofs, hasTool, listTree, REAL_ABSENT, REAL_PRESENT, sha256, type RealImage } from './fixtures.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-image-src-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const missing = ['umoci', 'skopeo', 'mkfs.erofs', 'fsck.erofs', 'dump.erofs'].filter((t) => !hasTool(t));
const isRoot = process.getuid?.() === 0;

let real: RealImage;
const built = new Map<string, PreparedImage>();
let n = 0;
const freshCache = () => join(scratch, `cache${n++}`);
const unpacked = (image: PreparedImage) => {
  const dest = join(scratch, `x${n++}`);
  extractErofs(image.diskPath, dest);
  return dest;
};

if (missing.length > 0) {
  console.log(`SKIP image sources: ${missing.join(', ')} not installed (scripts/setup.sh installs them)`);
} else {
  test.before(() => {
    const started = Date.now();
    real = buildRealImage(join(scratch, 'fixture'));
    console.log(`  fixture (umoci + skopeo): ${Date.now() - started} ms`);
  });

  test('oci, oci-archive and docker-archive give the same tree, digest and bytes', async () => {
    const sources = {
      oci: { kind: 'oci', path: real.layout, tag: real.tag },
      'oci-archive': parseImageRef(`oci-archive:${real.ociArchive}`),
      'docker-archive': parseImageRef(`docker-archive:${real.dockerArchive}`),
    } as const;
    for (const [name, source] of Object.entries(sources)) {
      const started = Date.now();
      const messages: string[] = [];
      built.set(name, await resolveImage(source, { cacheDir: freshCache(), onProgress: (m) => messages.push(m) }));
      console.log(`  ${name}: built in ${Date.now() - started} ms`);
      assert.ok(messages.some((m) => /applying layer 3\/3 sha256:/.test(m)), messages.join('\n'));
    }
    const [oci, ociArchive, dockerArchive] = [built.get('oci')!, built.get('oci-archive')!, built.get('docker-archive')!];
    // The digest is the config's: look it up in the layout by hand.
    const index = JSON.parse(readFileSync(join(real.layout, 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(join(real.layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    assert.is(oci.digest, manifest.config.digest.slice(7));
    assert.is(ociArchive.digest, oci.digest);
    assert.is(dockerArchive.digest, oci.digest);
    assert.ok(oci.diskPath.endsWith(`/images/${oci.digest}.erofs`));
    assert.ok(existsSync(oci.diskPath.replace(/\.erofs$/, '.json')));
    assert.is(oci.sizeBytes, statSync(oci.diskPath).size);
    const bytes = sha256(readFileSync(oci.diskPath));
    assert.is(sha256(readFileSync(ociArchive.diskPath)), bytes, 'deterministic: same tree, same bytes');
    assert.is(sha256(readFileSync(dockerArchive.diskPath)), bytes);
    const tree = listTree(unpacked(oci));
    assert.equal(listTree(unpacked(ociArchive)), tree);
    assert.equal(listTree(unpacked(dockerArchive)), tree);
  });

  test('layers applied: whiteout, opaque dir, hardlink, owners, modes, busybox intact', () => {
    const image = built.get('oci')!;
    const root = unpacked(image);
    const lexists = (p: string) => lstatSync(join(root, p), { throwIfNoEntry: false }) !== undefined;
    for (const p of REAL_PRESENT) assert.ok(lexists(p), `${p} present`);
    for (const p of REAL_ABSENT) assert.not.ok(lexists(p), `${p} absent`);
    assert.equal(readdirSync(join(root, 'opq')), ['new'], 'opaque: only the upper layer content');
    assert.is(readFileSync(join(root, 'added'), 'utf8'), 'added by layer 2\n');
    assert.is(sha256(readFileSync(join(root, 'bin/busybox'))), sha256(readFileSync('/bin/busybox')));
    const lines = listTree(root);
    const line = (p: string) => lines.find((l) => l.startsWith(`${p} `)) ?? `${p} missing`;
    assert.match(line('bin/sh'), / symlink busybox$/);
    assert.match(line('bin/ls'), / symlink \/bin\/busybox$/);
    assert.is(erofsMode(image.diskPath, '/data/setuid') & 0o7777, 0o4755, 'set-uid kept (fsck.erofs --extract would drop it)');
    assert.match(line('tmp'), /^tmp 1777 0:0 dir/);
    if (isRoot) assert.match(line('data/owned'), /^data\/owned 644 1000:1001 file/);
    assert.is(erofsNid(image.diskPath, '/data/a'), erofsNid(image.diskPath, '/data/b'), 'hardlink: one inode');
    assert.is.not(erofsNid(image.diskPath, '/data/a'), erofsNid(image.diskPath, '/keep/k'));
  });

  test('config: Entrypoint, Cmd, Env, WorkingDir, User from config.config', () => {
    for (const image of built.values()) {
      assert.equal(image.config, {
        entrypoint: ['/bin/busybox'],
        cmd: ['sh', '-c', 'echo hi'],
        env: ['FOO=bar', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        workingDir: '/keep',
        user: '1000:1001',
      });
    }
  });

  test('cache hit: same digest and path, no rebuild, layers not even read', async () => {
    const cache = freshCache();
    const layout = join(scratch, 'layout-copy');
    cpSync(real.layout, layout, { recursive: true });
    const first = await resolveImage({ kind: 'oci', path: layout }, { cacheDir: cache });
    const mtime = statSync(first.diskPath).mtimeMs;
    // Break every layer blob: a hit must not notice, since the config digest is known up front.
    const manifestHex = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest.slice(7);
    for (const l of JSON.parse(readFileSync(join(layout, 'blobs/sha256', manifestHex), 'utf8')).layers) truncateSync(join(layout, 'blobs/sha256', l.digest.slice(7)), 10);
    const started = performance.now();
    const messages: string[] = [];
    const again = await resolveImage({ kind: 'oci', path: layout }, { cacheDir: cache, onProgress: (m) => messages.push(m) });
    const elapsed = performance.now() - started;
    console.log(`  cache hit: ${elapsed.toFixed(1)} ms`);
    assert.equal(again, first);
    assert.is(statSync(first.diskPath).mtimeMs, mtime, 'not rebuilt');
    assert.ok(elapsed < 500, `${elapsed} ms`);
    assert.ok(messages.some((m) => /is cached/.test(m)));
    // Another transport of the same image shares the entry.
    const other = await resolveImage({ kind: 'docker-archive', path: real.dockerArchive }, { cacheDir: cache });
    assert.is(other.diskPath, first.diskPath);
    // A lost record means a rebuild (with the same bytes); a broken source then fails cleanly.
    rmSync(first.diskPath.replace(/\.erofs$/, '.json'));
    await expectCode(resolveImage({ kind: 'oci', path: layout }, { cacheDir: cache }), GuestError, 'IMAGE_DIGEST_MISMATCH');
    const rebuilt = await resolveImage({ kind: 'oci', path: real.layout }, { cacheDir: cache });
    assert.is(sha256(readFileSync(rebuilt.diskPath)), sha256(readFileSync(built.get('oci')!.diskPath)));
  });

  test('tags: oci-archive and docker-archive refs select by tag; unknown tags list the known ones', async () => {
    const cache = freshCache();
    const a = await resolveImage(parseImageRef(`oci-archive:${real.ociArchive}:v2`), { cacheDir: cache });
    // skopeo wrote "docker.io/library/vctest:v1" in RepoTags; the short name matches it.
    const b = await resolveImage(parseImageRef(`docker-archive:${real.dockerArchive}:vctest:v1`), { cacheDir: cache });
    assert.is(a.digest, b.digest);
    await expectCode(resolveImage({ kind: 'oci', path: real.layout, tag: 'nope' }, { cacheDir: cache }), GuestError, 'IMAGE_NOT_FOUND', /no image tagged "nope" \(tags: "t"\)/);
    await expectCode(resolveImage(parseImageRef(`docker-archive:${real.dockerArchive}:other`), { cacheDir: cache }), GuestError, 'IMAGE_NOT_FOUND', /no image tagged "other" \(tags: "docker\.io\/library\/vctest:v1"\)/);
  });

  test('default image: static busybox, applet links, passwd/group, root, tmp, home; cached', async () => {
    const cache = freshCache();
    const started = Date.now();
    const image = await resolveImage({ kind: 'default' }, { cacheDir: cache });
    console.log(`  default image: ${Date.now() - started} ms`);
    assert.equal(image.config, { entrypoint: [], cmd: ['sh'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], workingDir: '/', user: '' });
    const root = unpacked(image);
    const lines = listTree(root);
    const line = (p: string) => lines.find((l) => l.startsWith(`${p} `)) ?? `${p} missing`;
    assert.match(line('bin/busybox'), /^bin\/busybox 755 0:0 file/);
    assert.match(line('bin/sh'), /^bin\/sh 777 0:0 symlink \/bin\/busybox$/);
    assert.match(line('tmp'), /^tmp 1777 0:0 dir/);
    assert.match(line('root'), /^root 700 0:0 dir/);
    assert.match(line('home'), /^home 755 0:0 dir/);
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^root:x:0:0:.*\nnobody:x:65534:65534:/);
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^root:x:0:\nnobody:x:65534:/);
    const applets = lines.filter((l) => l.endsWith(' symlink /bin/busybox')).length;
    assert.ok(applets > 100, `${applets} applet links`);
    const again = await resolveImage({ kind: 'default' }, { cacheDir: cache });
    assert.equal(again, image);
    const elsewhere = await resolveImage({ kind: 'default' }, { cacheDir: freshCache() });
    assert.is(elsewhere.digest, image.digest);
    assert.is(sha256(readFileSync(elsewhere.diskPath)), sha256(readFileSync(image.diskPath)), 'deterministic');
  });

  test('dir image: content-hashed, built in place with its owners, rebuilt when the tree changes', async () => {
    const cache = freshCache();
    const dir = join(scratch, 'rootfs-dir');
    mkdirSync(join(dir, 'etc'), { recursive: true });
    writeFileSync(join(dir, 'etc/hostname'), 'one\n');
    const a = await resolveImage({ kind: 'dir', path: dir }, { cacheDir: cache });
    assert.equal(await resolveImage({ kind: 'dir', path: dir }, { cacheDir: cache }), a);
    assert.equal(a.config.cmd, []);
    writeFileSync(join(dir, 'etc/hostname'), 'two\n');
    const b = await resolveImage({ kind: 'dir', path: dir }, { cacheDir: cache });
    assert.is.not(b.digest, a.digest);
    assert.is(readFileSync(join(unpacked(b), 'etc/hostname'), 'utf8'), 'two\n');
    await expectCode(resolveImage({ kind: 'dir', path: join(scratch, 'nope') }, { cacheDir: cache }), GuestError, 'IMAGE_NOT_FOUND', /nope/);
  });
}

test.run();
