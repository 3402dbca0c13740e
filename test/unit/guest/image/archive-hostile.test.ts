// The rules for outer archives (docs/images-and-rootfs.md, "Rules for outer archives"), one case
// each: a docker-archive or oci-archive written byte for byte (hostile-tar.ts's rawTar) is either
// refused with the documented code and a message naming the archive and what was wrong, or read
// as the documented rule says — the image it holds, every layer byte from the archive itself.
// Cases marked "(was: …)" are bugs the rules fixed. archive-fuzz.test.ts mixes them at random.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestError } from '../../../../src/guest/errors.js';
import { indexTar } from '../../../../src/guest/image/tar-index.js';
import { expectCode } from '../../../helpers/errors.js';
import { rawTar, type RawEntry } from './hostile-tar.js';
import { ARCH, asEntries, badArchiveRefusal, configDoc, dockerMembers, layerTar, OCI_MANIFEST, ociMembers, readArchive, readOutside, sha, type Kind } from './hostile-archive.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-archive-hostile-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

const LAYER = layerTar('ID=test\n');
const CONFIG = Buffer.from(JSON.stringify(configDoc([LAYER])));
const BLOB = `blobs/sha256/${sha(LAYER)}`;

type Refuse = { code: string; message: RegExp };
interface Case {
  name: string;
  kind: Kind;
  tar: () => Buffer;
  /** A refusal, or "the image": read as CONFIG and LAYER, unchanged. */
  expect: Refuse | 'the image';
}

const refuse = (code: string, message: RegExp): Refuse => ({ code, message });
const invalid = (message: RegExp) => refuse('IMAGE_INVALID', message);
const unsafe = (message: RegExp) => refuse('IMAGE_UNSAFE', message);
/** docker save's members (layer at BLOB), each entry then edited. */
const docker = (edit: (entries: RawEntry[]) => void = () => {}, opts: Parameters<typeof dockerMembers>[1] = {}) => () => {
  const entries = asEntries(dockerMembers([LAYER], { blobNames: true, ...opts }));
  edit(entries);
  return rawTar(entries);
};
const oci = (edit: (entries: RawEntry[]) => void = () => {}, opts: Parameters<typeof ociMembers>[1] = {}) => () => {
  const entries = asEntries(ociMembers([LAYER], opts));
  edit(entries);
  return rawTar(entries);
};
const named = (entries: RawEntry[], name: string) => entries.find((e) => e.name === name)!;
/** A docker manifest whose first image is edited. */
const manifest = (edit: (image: Record<string, unknown>) => unknown) => ({ manifest: (m: Record<string, unknown>[]) => [edit(m[0]!) ?? m[0]] });
const config = (edit: (c: Record<string, unknown>) => void): Buffer => {
  const c = configDoc([LAYER]);
  edit(c);
  return Buffer.from(JSON.stringify(c));
};
const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

const cases: Case[] = [
  { name: 'the baseline docker-archive', kind: 'docker-archive', tar: docker(), expect: 'the image' },
  { name: 'the baseline oci-archive', kind: 'oci-archive', tar: oci(), expect: 'the image' },

  // Headers and sizes.
  { name: 'bad checksum', kind: 'docker-archive', tar: docker((e) => (e[1]!.badChecksum = true)), expect: invalid(/not a valid tar archive: bad header checksum at offset \d+/) },
  { name: 'size field not octal', kind: 'docker-archive', tar: docker((e) => (e[0]!.size = Buffer.from('12 34\0      '))), expect: invalid(/bad size field "12 34" at offset 0/) },
  { name: 'base-256 size beyond 2^53', kind: 'docker-archive', tar: docker((e) => (e[0]!.size = Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))), expect: invalid(/size out of range at offset 0/) },
  {
    name: 'base-256 size that fits: read',
    kind: 'docker-archive',
    tar: docker((e) => {
      const size = Buffer.alloc(12);
      size[0] = 0x80;
      size.writeUIntBE(LAYER.length, 6, 6);
      named(e, BLOB).size = size;
    }),
    expect: 'the image',
  },
  { name: 'size past the end', kind: 'docker-archive', tar: docker((e) => (e[2]!.size = 0o77777777777)), expect: invalid(/truncated: the member at offset \d+ needs 8589934591 bytes, the file ends \d+ bytes after its header/) },
  { name: 'pax size past the end', kind: 'oci-archive', tar: oci((e) => (e[0]!.pax = { size: '99999999' })), expect: invalid(/truncated: the member at offset \d+ needs 99999999 bytes/) },
  { name: 'pax size not a number', kind: 'oci-archive', tar: oci((e) => (e[0]!.pax = { size: '1e3' })), expect: invalid(/bad pax size in the extended header at offset 0/) },
  { name: 'cut inside a header', kind: 'docker-archive', tar: () => docker()().subarray(0, 512 * 4 + 100), expect: invalid(/truncated: 100 stray bytes after the last member/) },
  { name: 'a 2 MiB pax header', kind: 'docker-archive', tar: docker((e) => (e[0]!.pax = { comment: 'c'.repeat(2 << 20) })), expect: invalid(/a \d+-byte extended header at offset 0/) },
  { name: 'no end-of-archive blocks: read', kind: 'docker-archive', tar: () => docker()().subarray(0, -1024), expect: 'the image' },
  { name: 'junk after the end-of-archive blocks: read, as GNU tar and Go do', kind: 'docker-archive', tar: () => Buffer.concat([docker()(), Buffer.alloc(700, 'j')]), expect: 'the image' },
  {
    name: 'a lone zero block, then members (was: members after it ignored; docker load refuses it)',
    kind: 'docker-archive',
    tar: () => {
      const entries = asEntries(dockerMembers([LAYER], { blobNames: true }));
      return Buffer.concat([rawTar(entries.slice(0, 2), { end: false }), Buffer.alloc(512), rawTar(entries.slice(2))]);
    },
    expect: invalid(/a lone zero block at offset \d+, followed by more headers/),
  },

  // Member names: keys inside the archive, never paths.
  { name: '"./" and "/" prefixes, pax, GNU and ustar-prefix spellings: read', kind: 'oci-archive', tar: oci((e) => {
    e[0]!.name = './oci-layout';
    e[1]!.name = '/index.json';
    Object.assign(e[2]!, { pax: { path: e[2]!.name }, name: 'PaxHeader' });
    Object.assign(e[3]!, { longName: e[3]!.name, name: '././@LongLink' });
    Object.assign(e[4]!, { prefix: 'blobs/sha256', name: (e[4]!.name as string).slice('blobs/sha256/'.length) });
  }), expect: 'the image' },
  { name: '".." in a member name (was: kept as a key no manifest could reach, where docker load saw the file)', kind: 'docker-archive', tar: docker((e) => (e[0]!.pax = { path: 'x/../manifest.json' })), expect: unsafe(/: member "x\/\.\.\/manifest\.json" contains "\.\.", outside the archive/) },
  { name: 'NUL in a member name', kind: 'docker-archive', tar: docker((e) => (e[0]!.pax = { path: 'manifest.json\0x' })), expect: invalid(/: member "manifest\.json\\u0000x" contains a NUL byte/) },
  {
    name: 'duplicate members: the last wins, as when unpacked',
    kind: 'docker-archive',
    tar: docker((e) => e.splice(0, 0, { name: 'manifest.json', data: '[{"Config": "nothing.json"}]' })),
    expect: 'the image',
  },
  { name: 'a directory with data (was: skipped, where Go reads the data as the next header)', kind: 'docker-archive', tar: docker((e) => e.push({ name: 'd/', type: '5', data: 'x'.repeat(600) })), expect: invalid(/member "d" at offset \d+ is a directory with 600 bytes of data/) },
  { name: 'an old-style directory (type NUL, name ending in "/") with data', kind: 'docker-archive', tar: docker((e) => e.push({ name: 'old/', type: '\0', data: 'x' })), expect: invalid(/member "old" at offset \d+ is a directory with 1 bytes of data/) },
  { name: 'a symlink with data', kind: 'docker-archive', tar: docker((e) => e.push({ name: 's', type: '2', linkname: BLOB, data: 'x' })), expect: invalid(/member "s" at offset \d+ is a symlink with 1 bytes of data/) },

  // Links standing for blobs: followed inside the archive only.
  {
    name: 'blobs behind a relative symlink and a hardlink (docker save\'s legacy layer.tar): read',
    kind: 'docker-archive',
    tar: docker((e) => {
      named(e, BLOB).name = 'store/layer';
      const cfg = e[1]!;
      e.push({ name: cfg.name as string, type: '1', linkname: 'store/config' }, { name: BLOB, type: '2', linkname: '../../store/layer' });
      cfg.name = 'store/config';
    }),
    expect: 'the image',
  },
  {
    name: 'a symlink to an absolute path (was: taken relative to the link\'s directory and read)',
    kind: 'docker-archive',
    tar: docker((e) => {
      named(e, BLOB).name = 'blobs/sha256/store/layer';
      e.push({ name: BLOB, type: '2', linkname: '/store/layer' });
    }),
    expect: unsafe(/: "blobs\/sha256\/[0-9a-f]{64}" links to "\/store\/layer", outside the archive/),
  },
  { name: 'a symlink out of the archive', kind: 'docker-archive', tar: docker((e) => (Object.assign(named(e, BLOB), { type: '2', linkname: '../../../etc/passwd', data: '' }))), expect: unsafe(/links to "\.\.\/\.\.\/\.\.\/etc\/passwd", outside the archive/) },
  { name: 'a hardlink with ".."', kind: 'docker-archive', tar: docker((e) => (Object.assign(named(e, BLOB), { type: '1', linkname: 'a/../../x', data: '' }))), expect: unsafe(/links to "a\/\.\.\/\.\.\/x", outside the archive/) },
  { name: 'a symlink loop', kind: 'docker-archive', tar: docker((e) => (Object.assign(named(e, BLOB), { type: '2', linkname: 'loop', data: '' }), e.push({ name: 'blobs/sha256/loop', type: '2', linkname: BLOB.split('/').pop() }))), expect: invalid(/too many links resolving "blobs\/sha256\/[0-9a-f]{64}"/) },
  { name: 'a hardlink to itself', kind: 'docker-archive', tar: docker((e) => (Object.assign(named(e, BLOB), { type: '1', linkname: BLOB, data: '' }))), expect: invalid(/too many links resolving/) },
  { name: 'a device member where a blob should be: not a file', kind: 'docker-archive', tar: docker((e) => (Object.assign(named(e, BLOB), { type: '3', data: '' }))), expect: invalid(/:blobs\/sha256\/[0-9a-f]{64}: missing \(listed in .*manifest\.json\)/) },

  // docker-archive's manifest.json and config.
  { name: 'no manifest.json', kind: 'docker-archive', tar: docker((e) => e.splice(0, 1)), expect: invalid(/:manifest\.json: missing; not a docker-archive/) },
  { name: 'manifest.json over 16 MiB', kind: 'docker-archive', tar: docker((e) => (e[0]!.data = Buffer.alloc((16 << 20) + 1, 0x20))), expect: invalid(/:manifest\.json: 16777217 bytes, more than the 16777216 a metadata file may have/) },
  { name: 'manifest.json nested a million deep (was: ≈ 2 s to parse; 18 s and 0.5 GB at 16 MiB)', kind: 'docker-archive', tar: docker((e) => (e[0]!.data = deep(1_000_000))), expect: invalid(/:manifest\.json: JSON nested deeper than 100 levels/) },
  { name: 'manifest.json nested 100 deep: parsed', kind: 'docker-archive', tar: docker((e) => (e[0]!.data = deep(100))), expect: invalid(/:manifest\.json: \[0\] must be a JSON object/) },
  { name: 'manifest.json of 16 MiB of empty objects (was: ≈ 7 s and 0.5 GB to parse)', kind: 'docker-archive', tar: docker((e) => (e[0]!.data = `[${'{},'.repeat(((16 << 20) - 3) / 3)}{}]`)), expect: invalid(/:manifest\.json: JSON with more than 1000000 values/) },
  { name: 'a million values: parsed', kind: 'docker-archive', tar: docker((e) => (e[0]!.data = `[${'0,'.repeat(999_999)}0]`)), expect: invalid(/:manifest\.json: \[0\] must be a JSON object/) },
  { name: 'manifest.json not JSON (a BOM)', kind: 'docker-archive', tar: docker((e) => (e[0]!.data = '\ufeff[]')), expect: invalid(/:manifest\.json: malformed JSON/) },
  { name: 'Layers a string', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Layers = BLOB))), expect: invalid(/:manifest\.json: \[0\]\.Layers must be a JSON array/) },
  { name: 'a layer path with ".."', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Layers = ['../../etc/passwd']))), expect: unsafe(/: the name "\.\.\/\.\.\/etc\/passwd" contains "\.\.", outside the archive/) },
  { name: 'an absolute Config path: looked up inside the archive', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Config = '/etc/passwd'))), expect: invalid(/:\/etc\/passwd: missing \(the image refers to it/) },
  { name: 'a layer path with a NUL', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Layers = [`${BLOB}\0`]))), expect: invalid(/: the name ".*\\u0000" contains a NUL byte/) },
  { name: 'a missing layer', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Layers = ['nothing/layer.tar']))), expect: invalid(/:nothing\/layer\.tar: missing \(listed in .*manifest\.json\)/) },
  {
    name: 'a megabyte-long Config name: the message stays short',
    kind: 'docker-archive',
    tar: docker(() => {}, manifest((m) => void (m.Config = 'c'.repeat(1 << 20)))),
    expect: invalid(/:c{200}…: missing/),
  },
  { name: 'a layer path with a megabyte-long name: the message stays short', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Layers = [`${'l'.repeat(1 << 20)}`]))), expect: invalid(/:l{200}…: missing \(listed in/) },
  { name: '501 layers (was: each applied in turn, however many)', kind: 'docker-archive', tar: docker(() => {}, manifest((m) => void (m.Layers = Array(501).fill(BLOB)))), expect: refuse('IMAGE_UNSUPPORTED', /manifest\.json: 501 layers, more than the 500 an image may have/) },
  {
    name: 'three hundred tags and no tag chosen: the message lists ten',
    kind: 'docker-archive',
    tar: docker(() => {}, { manifest: (m) => [m[0], { ...m[0], RepoTags: Array.from({ length: 300 }, (_, i) => `t${i}:${'v'.repeat(50)}`) }] }),
    expect: refuse('IMAGE_NOT_FOUND', /holds 2 images; choose one by tag \(tags: "example\.com\/app:1", "t0:v+", .*, … \(301 in all\)\)$/),
  },
  { name: 'config digest not its name', kind: 'docker-archive', tar: docker((e) => (e[1]!.data = config((c) => (c.author = 'x')))), expect: refuse('IMAGE_DIGEST_MISMATCH', /content has sha256:[0-9a-f]{64}, but its name says sha256:/) },
  { name: 'config os a deep array (was: RangeError, String() overflowed the stack)', kind: 'docker-archive', tar: docker(() => {}, { config: Buffer.from(`{"os":${deep(100_000)},"rootfs":{"type":"layers","diff_ids":[]}}`), manifest: (m) => [{ ...m[0], Layers: [] }] }), expect: invalid(/JSON nested deeper than 100 levels/) },
  { name: 'config os an array', kind: 'docker-archive', tar: docker(() => {}, { config: config((c) => (c.os = [['linux']])) }), expect: refuse('IMAGE_UNSUPPORTED', /os is an array; only linux/) },
  { name: 'config os {"toString": 1} (was: TypeError)', kind: 'docker-archive', tar: docker(() => {}, { config: config((c) => (c.os = { toString: 1 })) }), expect: refuse('IMAGE_UNSUPPORTED', /os is an object; only linux/) },
  { name: 'config os a megabyte string: the message stays short', kind: 'docker-archive', tar: docker(() => {}, { config: config((c) => (c.os = 'w'.repeat(1 << 20))) }), expect: refuse('IMAGE_UNSUPPORTED', /os is "w{100}…"; only linux/) },
  { name: 'diff_ids a number', kind: 'docker-archive', tar: docker(() => {}, { config: config((c) => (c.rootfs = { type: 'layers', diff_ids: 5 })) }), expect: invalid(/rootfs\.diff_ids must be a JSON array/) },

  // oci-archive's index, manifest and descriptors.
  { name: 'an unknown manifest media type', kind: 'oci-archive', tar: oci(() => {}, { manifest: (m) => ({ ...m, mediaType: 'application/vnd.unknown+json' }) }), expect: refuse('IMAGE_UNSUPPORTED', /media type "application\/vnd\.unknown\+json" is not an image manifest/) },
  { name: 'a descriptor size over the JSON limit', kind: 'oci-archive', tar: oci(() => {}, { index: (i) => ({ manifests: [{ ...(i.manifests as object[])[0], size: 2 ** 40 }] }) }), expect: invalid(/descriptor size 1099511627776 is too large for a JSON document/) },
  { name: 'a manifest that is not its digest', kind: 'oci-archive', tar: oci((e) => (e[2]!.data = Buffer.concat([e[2]!.data as Buffer, Buffer.from(' ')]))), expect: refuse('IMAGE_DIGEST_MISMATCH', /content has sha256:[0-9a-f]{64} \(\d+ bytes\), but its descriptor says/) },
  { name: 'a negative descriptor size', kind: 'oci-archive', tar: oci(() => {}, { manifest: (m) => ({ ...m, layers: [{ ...(m.layers as object[])[0], size: -1 }] }) }), expect: invalid(/layers\[0\]\.size must be a non-negative integer/) },
  { name: 'a layer digest of 5000 hex digits: the message stays short', kind: 'oci-archive', tar: oci(() => {}, { manifest: (m) => ({ ...m, layers: [{ ...(m.layers as object[])[0], digest: `sha256:${'a'.repeat(5000)}` }] }) }), expect: invalid(/layers\[0\]\.digest "sha256:a{93}…" is not a sha256 digest/) },
  { name: 'a layer digest of another algorithm', kind: 'oci-archive', tar: oci(() => {}, { manifest: (m) => ({ ...m, layers: [{ ...(m.layers as object[])[0], digest: `sha512:${'a'.repeat(128)}` }] }) }), expect: refuse('IMAGE_UNSUPPORTED', /uses sha512; only sha256 digests are supported/) },
  { name: 'a layer whose blob is missing', kind: 'oci-archive', tar: oci((e) => e.splice(4, 1)), expect: invalid(/missing blob sha256:[0-9a-f]{64}: .*:blobs\/sha256\/[0-9a-f]{64} does not exist/) },
  {
    name: 'an index whose platforms are objects (was: TypeError naming what was offered)',
    kind: 'oci-archive',
    tar: () => {
      const entries = asEntries(ociMembers([LAYER]));
      const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${'a'.repeat(64)}`, size: 1, platform: { os: { toString: 1 }, architecture: [[[1]]] } }] }));
      entries.push({ name: `blobs/sha256/${sha(nested)}`, data: nested });
      named(entries, 'index.json').data = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${sha(nested)}`, size: nested.length }] });
      return rawTar(entries);
    },
    expect: refuse('IMAGE_NOT_FOUND', new RegExp(`no manifest for linux/${ARCH} \\(offered: an object/an array\\)`)),
  },
];

test('hostile outer archives are refused or read by rule', async () => {
  for (const [n, c] of cases.entries()) {
    const path = join(scratch, `case${n}.tar`);
    writeFileSync(path, c.tar());
    const where = `case "${c.name}"`;
    const start = performance.now();
    const read = await readArchive(path, c.kind);
    const ms = performance.now() - start;
    assert.ok(ms < 3000, `${where}: took ${Math.round(ms)} ms`);
    if (typeof c.expect === 'object') {
      assert.ok(read.error, `${where}: expected ${c.expect.code}, but it was read`);
      assert.is(badArchiveRefusal(read.error, path), undefined, where);
      assert.is((read.error as GuestError).code, c.expect.code, `${where}: ${(read.error as Error).message}`);
      assert.match((read.error as Error).message, c.expect.message, `${where}: ${(read.error as Error).message}`);
    } else {
      if (read.error) assert.unreachable(`${where}: ${(read.error as Error).stack}`);
      assert.is(readOutside(path, read), undefined, where);
      assert.is(read.plan!.digest, sha(CONFIG), where);
      assert.equal(read.layers!.map((l) => sha(l)), [sha(LAYER)], where);
    }
    rmSync(path);
  }
});

// The bounds on the index are 100000 headers and 32 MiB of names (an image archive holds a few
// members per layer, named in a few dozen bytes each: a 10 GB archive of 1 MiB pax names would
// have been 10 GB of memory); lowered here so the cases stay small.
test('more headers or longer names than the bounds: refused before the index grows further (was: memory as large as the archive)', async () => {
  const path = join(scratch, 'many.tar');
  writeFileSync(path, rawTar(Array.from({ length: 11 }, (_, i) => ({ name: `m${i}`, type: '2', linkname: 'target' }))));
  // Names m0…m10 and targets "target": 23 + 66 characters.
  assert.is((await indexTar(path, { maxHeaders: 11, maxNameBytes: 89 })).names().length, 11);
  await expectCode(indexTar(path, { maxHeaders: 10 }), GuestError, 'IMAGE_INVALID', /many\.tar: not a valid tar archive: more than 10 headers/);
  await expectCode(indexTar(path, { maxNameBytes: 88 }), GuestError, 'IMAGE_INVALID', /many\.tar: not a valid tar archive: member names and link targets longer than 88 characters in all/);
});

test.run();
