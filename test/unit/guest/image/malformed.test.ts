// resolveImage on broken and hostile images (synthetic layouts and archives): every failure is a
// GuestError naming the file, digest or field, and leaves nothing in the cache — no image, no
// record, no temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestError } from '../../../../src/guest/errors.js';
import { VcError } from '../../../../src/errors.js';
import { resolveImage, type ImageSource } from '../../../../src/guest/image/index.js';
import { expectCode } from '../../../helpers/errors.js';
import { gzip, hasTool, makeTar, sha256, writeDockerArchive, writeOciLayout, type TarEntry } from './fixtures.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-image-bad-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
const fresh = (what: string) => join(scratch, `${what}${n++}`);
const okLayer = () => makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/os-release', type: 'file', data: 'ID=test\n' }]);

/** Resolves into a fresh cache, expects `code` and `message`, and checks the cache stayed empty. */
async function rejects(source: ImageSource, code: string, message: RegExp): Promise<void> {
  const cache = fresh('cache');
  await expectCode(resolveImage(source, { cacheDir: cache }), GuestError, code, message);
  const images = join(cache, 'images');
  assert.equal(existsSync(images) ? readdirSync(images) : [], [], 'nothing left in the cache');
}

test('a good synthetic layout builds (the baseline the cases below break)', async () => {
  const layout = writeOciLayout(fresh('layout'), [gzip(await okLayer())]);
  const image = await resolveImage({ kind: 'oci', path: layout.dir }, { cacheDir: fresh('cache') });
  assert.is(image.digest, layout.configDigest);
  assert.equal(image.config.cmd, ['sh']);
});

test('missing blobs: layer, config, manifest', async () => {
  for (const which of ['layer', 'config', 'manifest'] as const) {
    const layout = writeOciLayout(fresh('layout'), [gzip(await okLayer())]);
    const hex = which === 'layer' ? layout.layerDigests[0]! : which === 'config' ? layout.configDigest : layout.manifestDigest;
    rmSync(layout.blob(hex));
    await rejects({ kind: 'oci', path: layout.dir }, 'IMAGE_INVALID', new RegExp(`missing blob sha256:${hex}: .*blobs/sha256/${hex} does not exist`));
  }
});

test('corrupted blobs: digest mismatch naming the blob and both digests', async () => {
  for (const which of ['layer', 'config', 'manifest'] as const) {
    const layout = writeOciLayout(fresh('layout'), [gzip(await okLayer())]);
    const hex = which === 'layer' ? layout.layerDigests[0]! : which === 'config' ? layout.configDigest : layout.manifestDigest;
    const data = readFileSync(layout.blob(hex));
    data[data.length - 12]! ^= 0x01;
    writeFileSync(layout.blob(hex), data);
    await rejects({ kind: 'oci', path: layout.dir }, 'IMAGE_DIGEST_MISMATCH', new RegExp(`${hex}.*content has sha256:[0-9a-f]{64}.* says sha256:${hex}`));
  }
});

test('bad layers: truncated tar, zstd, diff_id mismatch', async () => {
  const full = await makeTar([{ name: 'big', type: 'file', data: 'x'.repeat(4000) }]);
  // Digests computed over the truncated bytes: only the tar itself is wrong.
  const truncated = writeOciLayout(fresh('layout'), [full.subarray(0, 2000)]);
  await rejects({ kind: 'oci', path: truncated.dir }, 'IMAGE_INVALID', /layer 1\/1 sha256:[0-9a-f]{12} .*: not a valid tar: Unexpected end of data/);
  const zstd = writeOciLayout(fresh('layout'), [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4])]);
  await rejects({ kind: 'oci', path: zstd.dir }, 'IMAGE_UNSUPPORTED', /zstd-compressed layers are not supported/);
  const wrongDiff = writeOciLayout(fresh('layout'), [gzip(full)], { diffIds: ['c'.repeat(64)] });
  await rejects({ kind: 'oci', path: wrongDiff.dir }, 'IMAGE_DIGEST_MISMATCH', /diff_id says sha256:c{64}/);
});

test('hostile layers: ../escape, absolute names, a write through an absolute symlink — nothing written anywhere', async () => {
  const outside = fresh('outside');
  mkdirSync(outside);
  const cases: Array<[TarEntry[], RegExp]> = [
    [[{ name: '../escape', type: 'file', data: 'x' }], /entry "\.\.\/escape" contains "\.\."/],
    [[{ name: '/etc/cron.d/evil', type: 'file', data: 'x' }], /entry "\/etc\/cron\.d\/evil" is an absolute path/],
    [[{ name: 'link', type: 'symlink', linkname: outside }, { name: 'link/pwned', type: 'file', data: 'x' }], /goes through "link", a symlink/],
    [[{ name: 'hl', type: 'link', linkname: '../../../etc/shadow' }], /contains "\.\."/],
  ];
  for (const [entries, message] of cases) {
    const layout = writeOciLayout(fresh('layout'), [await okLayer(), gzip(await makeTar(entries))]);
    await rejects({ kind: 'oci', path: layout.dir }, 'IMAGE_UNSAFE', message);
  }
  assert.equal(readdirSync(outside), []);
  assert.not.ok(existsSync(join(scratch, 'escape')));
});

test('layout selection: unknown tag, several images without a tag, no images', async () => {
  const layout = writeOciLayout(fresh('layout'), [await okLayer()], { tags: ['a', 'b'] });
  await rejects({ kind: 'oci', path: layout.dir, tag: 'c' }, 'IMAGE_NOT_FOUND', /index\.json: no image tagged "c" \(tags: "a", "b"\)/);
  await rejects({ kind: 'oci', path: layout.dir }, 'IMAGE_NOT_FOUND', /holds 2 images; choose one by tag \(tags: "a", "b"\)/);
  const image = await resolveImage({ kind: 'oci', path: layout.dir, tag: 'b' }, { cacheDir: fresh('cache') });
  assert.is(image.digest, layout.configDigest);
  const empty = writeOciLayout(fresh('layout'), [await okLayer()], { tags: [] });
  await rejects({ kind: 'oci', path: empty.dir }, 'IMAGE_NOT_FOUND', /holds no image/);
});

test('malformed JSON and fields name the file and the field', async () => {
  const badIndex = writeOciLayout(fresh('layout'), [await okLayer()]);
  writeFileSync(join(badIndex.dir, 'index.json'), '{"manifests": [');
  await rejects({ kind: 'oci', path: badIndex.dir }, 'IMAGE_INVALID', /index\.json: malformed JSON/);

  const noOciLayout = writeOciLayout(fresh('layout'), [await okLayer()]);
  rmSync(join(noOciLayout.dir, 'oci-layout'));
  await rejects({ kind: 'oci', path: noOciLayout.dir }, 'IMAGE_INVALID', /oci-layout: missing; not an OCI image layout/);

  const badDigest = writeOciLayout(fresh('layout'), [await okLayer()]);
  const index = JSON.parse(readFileSync(join(badDigest.dir, 'index.json'), 'utf8'));
  index.manifests[0].digest = 'sha256:xyz';
  writeFileSync(join(badDigest.dir, 'index.json'), JSON.stringify(index));
  await rejects({ kind: 'oci', path: badDigest.dir }, 'IMAGE_INVALID', /index\.json: manifests\[0\]\.digest "sha256:xyz" is not a sha256 digest/);
  index.manifests[0].digest = `sha512:${'a'.repeat(128)}`;
  writeFileSync(join(badDigest.dir, 'index.json'), JSON.stringify(index));
  await rejects({ kind: 'oci', path: badDigest.dir }, 'IMAGE_UNSUPPORTED', /uses sha512; only sha256/);

  // Config problems: bad JSON (a blob with a correct digest), a wrong field type, a layer count mismatch.
  const withConfig = async (config: Record<string, unknown>) => writeOciLayout(fresh('layout'), [await okLayer()], { config });
  const badCmd = await withConfig({ config: { Cmd: 'sh -c true' } });
  await rejects({ kind: 'oci', path: badCmd.dir }, 'IMAGE_INVALID', new RegExp(`${badCmd.configDigest}: config\\.Cmd must be a JSON array`));
  const badCount = await withConfig({ rootfs: { type: 'layers', diff_ids: [] } });
  await rejects({ kind: 'oci', path: badCount.dir }, 'IMAGE_INVALID', /rootfs\.diff_ids lists 0 layers, the manifest .* has 1/);
  const windows = await withConfig({ os: 'windows' });
  await rejects({ kind: 'oci', path: windows.dir }, 'IMAGE_UNSUPPORTED', /os is "windows"/);

  const notJson = writeOciLayout(fresh('layout'), [await okLayer()]);
  const garbage = Buffer.from('{ not json');
  const hex = sha256(garbage);
  writeFileSync(notJson.blob(hex), garbage);
  const manifest = JSON.parse(readFileSync(notJson.blob(notJson.manifestDigest), 'utf8'));
  manifest.config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${hex}`, size: garbage.length };
  const manifestData = Buffer.from(JSON.stringify(manifest));
  writeFileSync(notJson.blob(sha256(manifestData)), manifestData);
  writeFileSync(join(notJson.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256(manifestData)}`, size: manifestData.length }] }));
  await rejects({ kind: 'oci', path: notJson.dir }, 'IMAGE_INVALID', new RegExp(`blobs/sha256/${hex}: malformed JSON`));
});

test('sources that are not there or not what they claim', async () => {
  await rejects({ kind: 'oci', path: fresh('nothing') }, 'IMAGE_NOT_FOUND', /oci:.*nothing/);
  await rejects({ kind: 'oci-archive', path: fresh('nothing') }, 'IMAGE_NOT_FOUND', /nothing/);
  const file = fresh('file');
  writeFileSync(file, 'x');
  await rejects({ kind: 'oci', path: file }, 'IMAGE_INVALID', /not a directory/);
  await rejects({ kind: 'docker-archive', path: scratch }, 'IMAGE_INVALID', /not a file/);
  await rejects({ kind: 'docker-archive', path: file }, 'IMAGE_INVALID', /not a valid tar archive/);
  await rejects({ kind: 'bogus' } as unknown as ImageSource, 'INVALID_OPTION', /unknown kind "bogus"/);
});

test('docker-archive: verified by the config name and diff_ids; tags; legacy and broken archives', async () => {
  const layer = await okLayer();
  const good = fresh('docker.tar');
  const digest = await writeDockerArchive(good, [layer], { repoTags: ['example.com/app:1'] });
  const image = await resolveImage({ kind: 'docker-archive', path: good, tag: 'example.com/app:1' }, { cacheDir: fresh('cache') });
  assert.is(image.digest, digest);
  assert.equal(image.config.env, ['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);

  const misnamed = fresh('docker.tar');
  await writeDockerArchive(misnamed, [layer], { configName: () => `${'d'.repeat(64)}.json` });
  await rejects({ kind: 'docker-archive', path: misnamed }, 'IMAGE_DIGEST_MISMATCH', /content has sha256:[0-9a-f]{64}, but its name says sha256:d{64}/);

  const tampered = fresh('docker.tar');
  await writeDockerArchive(tampered, [layer], { config: { rootfs: { type: 'layers', diff_ids: [`sha256:${'e'.repeat(64)}`] } } });
  await rejects({ kind: 'docker-archive', path: tampered }, 'IMAGE_DIGEST_MISMATCH', /layer 1\/1 .*\/layer\.tar\): .*diff_id says sha256:e{64}/);

  // No stored digest: a zstd layer cannot be checked before decompression, so it is reported as
  // unsupported, not as a mismatch with the (uncompressed) diff_id.
  const zstd = fresh('docker.tar');
  await writeDockerArchive(zstd, [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 9, 9])], { config: { rootfs: { type: 'layers', diff_ids: [`sha256:${'f'.repeat(64)}`] } } });
  await rejects({ kind: 'docker-archive', path: zstd }, 'IMAGE_UNSUPPORTED', /zstd-compressed/);

  const badManifest = fresh('docker.tar');
  writeFileSync(badManifest, await makeTar([{ name: 'manifest.json', type: 'file', data: '[{"Config": 5}]' }]));
  await rejects({ kind: 'docker-archive', path: badManifest }, 'IMAGE_INVALID', /manifest\.json: \[0\]\.Config must be a string/);

  const legacy = fresh('docker.tar');
  writeFileSync(legacy, await makeTar([{ name: 'repositories', type: 'file', data: '{}' }]));
  await rejects({ kind: 'docker-archive', path: legacy }, 'IMAGE_UNSUPPORTED', /pre-Docker-1\.10 archive/);

  await rejects({ kind: 'docker-archive', path: good, tag: 'other' }, 'IMAGE_NOT_FOUND', /no image tagged "other" \(tags: "example\.com\/app:1"\)/);
});

test('oci-archive: a tar of a layout, with the same checks inside', async () => {
  if (!hasTool('tar')) {
    console.log('SKIP oci-archive from tar: no tar');
    return;
  }
  const layout = writeOciLayout(fresh('layout'), [gzip(await okLayer())]);
  const archive = fresh('oci.tar');
  execFileSync('tar', ['-cf', archive, '-C', layout.dir, '.']);
  const image = await resolveImage({ kind: 'oci-archive', path: archive }, { cacheDir: fresh('cache') });
  assert.is(image.digest, layout.configDigest);
  rmSync(layout.blob(layout.layerDigests[0]!));
  const broken = fresh('oci.tar');
  execFileSync('tar', ['-cf', broken, '-C', layout.dir, '.']);
  await rejects({ kind: 'oci-archive', path: broken }, 'IMAGE_INVALID', new RegExp(`missing blob sha256:${layout.layerDigests[0]}: .*oci\\.tar\\d+:blobs/sha256/`));
});

test('aborting mid-build stops it and leaves nothing', async () => {
  const layout = writeOciLayout(fresh('layout'), [await okLayer(), await okLayer()]);
  const controller = new AbortController();
  const cache = fresh('cache');
  const onProgress = (m: string) => {
    if (m.includes('layer 2/2')) controller.abort();
  };
  await expectCode(resolveImage({ kind: 'oci', path: layout.dir }, { cacheDir: cache, signal: controller.signal, onProgress }), VcError, 'ABORTED');
  assert.equal(readdirSync(join(cache, 'images')), []);
  await expectCode(resolveImage({ kind: 'oci', path: layout.dir }, { cacheDir: cache, signal: controller.signal }), VcError, 'ABORTED');
});

test.run();
