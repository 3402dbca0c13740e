// Layer application on synthetic tars (tar-stream pack): whiteouts, opaque dirs, metadata,
// hardlinks, devices, compression detection, and every way an untrusted layer may try to write
// outside the staging root.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GuestError } from '../../../../src/guest/errors.js';
import { applyLayer, sniffCompression, type LayerSource } from '../../../../src/guest/image/layer.js';
import { StagingTree } from '../../../../src/guest/image/staging.js';
import { expectCode } from '../../../helpers/errors.js';
import { gzip, makeTar, sha256, type TarEntry } from './fixtures.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-image-staging-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const expectGuestCode = (p: Promise<unknown>, code: string, message?: string | RegExp) => expectCode(p, GuestError, code, message);
const isRoot = process.getuid?.() === 0;

let n = 0;
function freshRoot(): string {
  const root = join(scratch, `root${n++}`);
  mkdirSync(root);
  return root;
}

/** A layer as stored (`blob`), verified against digests computed from it unless overridden. */
function layer(blob: Buffer, uncompressed: Buffer = blob, over: Partial<LayerSource> = {}): LayerSource {
  return { label: 'layer test', open: async () => Readable.from([blob]), digest: sha256(blob), size: blob.length, diffId: sha256(uncompressed), ...over };
}

async function apply(root: string, layers: TarEntry[][], privileged = isRoot): Promise<StagingTree> {
  const tree = new StagingTree(root, { privileged });
  for (const entries of layers) {
    const t = await makeTar(entries);
    await applyLayer(tree, layer(t));
  }
  await tree.finish();
  return tree;
}

const file = (name: string, data = name, extra: Partial<TarEntry> = {}): TarEntry => ({ name, type: 'file', mode: 0o644, data, ...extra });
const dir = (name: string, extra: Partial<TarEntry> = {}): TarEntry => ({ name, type: 'directory', mode: 0o755, ...extra });
const marker = (name: string): TarEntry => ({ name, type: 'file', mode: 0, data: '' });
const ls = (path: string) => readdirSync(path).sort();

test('whiteouts delete lower entries; opaque markers hide lower contents; same-layer entries survive', async () => {
  const root = freshRoot();
  await apply(root, [
    [dir('a'), file('a/x'), file('a/y'), dir('a/sub'), file('a/sub/deep'), dir('o'), file('o/lower'), dir('o/d'), file('o/d/lower'), file('top'), dir('gonedir'), file('gonedir/f')],
    [
      // Opaque marker first (umoci's order) and last (other tools): both hide only lower entries.
      marker('o/.wh..wh..opq'), file('o/d/new'), file('o/upper'),
      marker('a/.wh.x'), marker('.wh.gonedir'), marker('.wh.missing'), marker('nodir/.wh.f'),
      // A whiteout for something this same layer writes does not apply to it (image-spec layer.md).
      file('fresh'), marker('.wh.fresh'),
      marker('.wh..wh.plnk'), // AUFS bookkeeping: ignored, never materialized
    ],
    [dir('p'), file('p/keep-upper'), marker('p/.wh..wh..opq')],
  ]);
  assert.equal(ls(root), ['a', 'fresh', 'o', 'p', 'top']);
  assert.equal(ls(join(root, 'a')), ['sub', 'y']);
  assert.equal(ls(join(root, 'o')), ['d', 'upper']);
  assert.equal(ls(join(root, 'o/d')), ['new'], 'the lower o/d/lower is hidden though o/d itself came back');
  assert.equal(ls(join(root, 'p')), ['keep-upper']);
  assert.not.ok(existsSync(join(root, 'nodir')), 'a whiteout in a missing dir creates nothing');
});

test('files, dirs and symlinks get mode, owner and mtime; dir metadata survives later children', async () => {
  const root = freshRoot();
  const mtime = new Date(1_600_000_000_000);
  await apply(root, [[
    dir('./', { mode: 0o750 }),
    dir('ro', { mode: 0o555, uid: 7, gid: 8, mtime }), // children are still added below it
    file('ro/f', 'x', { mode: 0o4755, uid: 1000, gid: 1001, mtime }),
    { name: 'ro/l', type: 'symlink', linkname: '../nowhere', uid: 5, gid: 6, mtime },
    file('implicit/parent/f'),
    { name: 'big-ids', type: 'file', data: 'x', pax: { uid: "3000000", gid: "3000001" } },
  ]]);
  const f = statSync(join(root, 'ro/f'));
  assert.is(f.mode & 0o7777, 0o4755, 'set-uid kept (chmod after chown)');
  if (isRoot) assert.equal([f.uid, f.gid], [1000, 1001]);
  assert.is(f.mtimeMs, mtime.getTime());
  const d = statSync(join(root, 'ro'));
  assert.is(d.mode & 0o7777, 0o555);
  assert.is(d.mtimeMs, mtime.getTime(), 'set after its children were written');
  if (isRoot) assert.equal([d.uid, d.gid], [7, 8]);
  const l = lstatSync(join(root, 'ro/l'));
  assert.is(readlinkSync(join(root, 'ro/l')), '../nowhere');
  if (isRoot) assert.equal([l.uid, l.gid], [5, 6]);
  assert.is(statSync(root).mode & 0o7777, 0o750, 'the "./" entry sets the root');
  assert.is(statSync(join(root, 'implicit')).mode & 0o7777, 0o755, 'missing parents: 0755');
  if (isRoot) assert.equal([statSync(join(root, 'big-ids')).uid, statSync(join(root, 'big-ids')).gid], [3000000, 3000001], 'pax uid/gid');
});

test('an entry replaces what was there: file↔dir, and a symlink is replaced, never written through', async () => {
  const root = freshRoot();
  const outside = join(scratch, 'outside-target');
  writeFileSync(outside, 'original');
  await apply(root, [
    [file('x'), dir('d'), file('d/inner'), { name: 'link', type: 'symlink', linkname: outside }],
    [dir('x'), file('x/child'), file('d', 'now a file'), file('link', 'replaced')],
  ]);
  assert.ok(statSync(join(root, 'x')).isDirectory());
  assert.is(readFileSync(join(root, 'd'), 'utf8'), 'now a file');
  assert.ok(lstatSync(join(root, 'link')).isFile());
  assert.is(readFileSync(outside, 'utf8'), 'original', 'the symlink target outside is untouched');
});

test('hardlinks: to an extracted entry share its inode; missing, outside or directory targets are refused', async () => {
  const root = freshRoot();
  await apply(root, [[file('a', 'data'), { name: 'b', type: 'link', linkname: 'a' }, { name: 'sym', type: 'symlink', linkname: 'a' }, { name: 'c', type: 'link', linkname: './sym' }]]);
  assert.is(statSync(join(root, 'a')).ino, statSync(join(root, 'b')).ino);
  assert.ok(lstatSync(join(root, 'c')).isSymbolicLink(), 'a hardlink to a symlink is a second name for the symlink');

  await expectGuestCode(apply(freshRoot(), [[{ name: 'b', type: 'link', linkname: 'nothing' }]]), 'IMAGE_INVALID', /hardlink to "nothing", which is not in the image/);
  await expectGuestCode(apply(freshRoot(), [[{ name: 'b', type: 'link', linkname: '../../etc/passwd' }]]), 'IMAGE_UNSAFE', /\.\./);
  await expectGuestCode(apply(freshRoot(), [[{ name: 'b', type: 'link', linkname: '/etc/passwd' }]]), 'IMAGE_UNSAFE', /absolute/);
  await expectGuestCode(apply(freshRoot(), [[dir('d'), { name: 'b', type: 'link', linkname: 'd' }]]), 'IMAGE_INVALID', /directory/);
  await expectGuestCode(
    apply(freshRoot(), [[{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'pw', type: 'link', linkname: 'etc/passwd' }]]),
    'IMAGE_UNSAFE',
    /goes through "etc", a symlink/,
  );
});

test('escapes are refused: "..", absolute names, writes and whiteouts through symlinks', async () => {
  const victim = join(scratch, 'victim');
  mkdirSync(victim, { recursive: true });
  writeFileSync(join(victim, 'keep'), 'keep');
  const cases: Array<[string, TarEntry[], RegExp]> = [
    ['dot-dot', [file('../escape')], /contains ".."/],
    ['dot-dot inside', [dir('a'), file('a/../../escape')], /contains ".."/],
    ['absolute', [file('/tmp/abs-escape')], /absolute path/],
    ['absolute symlink, then a write through it', [{ name: 'evil', type: 'symlink', linkname: victim }, file('evil/escape')], /goes through "evil", a symlink \(to .*victim\)/],
    ['relative symlink to the root, then a write through it', [{ name: 'up', type: 'symlink', linkname: '..' }, file('up/escape')], /goes through "up", a symlink/],
    ['symlinked dir deep in the path', [dir('a'), { name: 'a/b', type: 'symlink', linkname: victim }, dir('a/b/c')], /goes through "a\/b"/],
    ['whiteout through a symlink', [{ name: 'evil', type: 'symlink', linkname: victim }, marker('evil/.wh.keep')], /goes through "evil"/],
    ['opaque through a symlink', [{ name: 'evil', type: 'symlink', linkname: victim }, marker('evil/.wh..wh..opq')], /goes through "evil"/],
  ];
  for (const [what, entries, message] of cases) {
    const root = freshRoot();
    await expectGuestCode(apply(root, [entries]), 'IMAGE_UNSAFE', message).catch((err) => { throw new Error(`${what}: ${(err as Error).message}`); });
  }
  assert.equal(ls(victim), ['keep'], 'nothing written or removed outside');
  assert.not.ok(existsSync(join(scratch, 'escape')));
  assert.not.ok(existsSync('/tmp/abs-escape'));
  // A symlink left by a lower layer is as dangerous as one in the same layer.
  const root = freshRoot();
  await expectGuestCode(apply(root, [[{ name: 'lib', type: 'symlink', linkname: victim }], [file('lib/x')]]), 'IMAGE_UNSAFE');
  assert.equal(ls(victim), ['keep']);
});

test('a file where a directory is needed is an error, not a silent replacement', async () => {
  await expectGuestCode(apply(freshRoot(), [[file('f'), file('f/child')]]), 'IMAGE_INVALID', /needs "f" to be a directory/);
});

test('devices: never made (privileged or not); fifos made; unprivileged: owners not applied', async () => {
  const entries: TarEntry[] = [
    { name: 'null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'loop9', type: 'block-device', mode: 0o660, devmajor: 7, devminor: 9 },
    { name: 'pipe', type: 'fifo', mode: 0o600 },
    file('owned', 'x', { uid: 1000, gid: 1000, mode: 0o600 }),
  ];
  for (const privileged of isRoot ? [true, false] : [false]) {
    const root = freshRoot();
    const tree = await apply(root, [entries], privileged);
    assert.equal(ls(root), ['owned', 'pipe'], `privileged: ${privileged}`);
    assert.ok(lstatSync(join(root, 'pipe')).isFIFO());
    assert.is(tree.stats.skippedDevices, 2);
    if (!privileged) {
      assert.is(tree.stats.droppedOwners, 1);
      assert.is(statSync(join(root, 'owned')).uid, process.getuid!(), 'owner not applied');
      assert.is(statSync(join(root, 'owned')).mode & 0o777, 0o600 | 0o400);
    }
  }
  if (!isRoot) console.log('SKIP devices when privileged: not running as root');
});

test('xattrs are counted, not applied', async () => {
  const tree = await apply(freshRoot(), [[{ ...file('ping'), pax: { 'SCHILY.xattr.security.capability': 'x' } }]]);
  assert.is(tree.stats.droppedXattrs, 1);
});

test('compression by magic bytes: gzip and plain give the same tree; zstd, xz, bzip2 refused', async () => {
  const t = await makeTar([dir('d'), file('d/f', 'hello')]);
  const plain = freshRoot();
  const zipped = freshRoot();
  await applyLayer(new StagingTree(plain), layer(t));
  await applyLayer(new StagingTree(zipped), layer(gzip(t), t));
  assert.is(readFileSync(join(zipped, 'd/f'), 'utf8'), 'hello');
  assert.equal(ls(plain), ls(zipped));
  assert.is(sniffCompression(gzip(t)), 'gzip');
  assert.is(sniffCompression(t), 'tar');
  for (const [name, magic] of [['zstd', [0x28, 0xb5, 0x2f, 0xfd, 0, 0]], ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]], ['bzip2', [0x42, 0x5a, 0x68, 0x39]]] as const) {
    const blob = Buffer.from([...magic, 1, 2, 3]);
    await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(blob)), 'IMAGE_UNSUPPORTED', new RegExp(`${name}-compressed layers are not supported`));
  }
});

test('digests: stored digest, size and diff_id are all checked; corruption is reported as a mismatch', async () => {
  const t = await makeTar([file('f', 'x'.repeat(5000))]);
  const gz = gzip(t);
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(gz, t, { digest: 'a'.repeat(64) })), 'IMAGE_DIGEST_MISMATCH', /its descriptor says sha256:a{64}/);
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(gz, t, { size: gz.length + 1 })), 'IMAGE_DIGEST_MISMATCH', /bytes, but its descriptor says/);
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(gz, t, { diffId: 'b'.repeat(64) })), 'IMAGE_DIGEST_MISMATCH', /diff_id says sha256:b{64}/);
  // Flip a byte in the gzip body: gunzip fails first, but the cause reported is the digest.
  const corrupt = Buffer.from(gz);
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0xff;
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(corrupt, t, { digest: sha256(gz) })), 'IMAGE_DIGEST_MISMATCH', /content has sha256:/);
  // The same for a plain tar known only by its diff_id (docker-archive).
  const plainCorrupt = Buffer.from(t);
  plainCorrupt[100]! ^= 0xff; // inside the first header: a checksum error
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(plainCorrupt, t, { digest: undefined, size: undefined })), 'IMAGE_DIGEST_MISMATCH', /diff_id says/);
});

test('bad tars: truncated data, garbage, unknown entry types', async () => {
  const t = await makeTar([file('a', 'x'.repeat(3000)), file('b')]);
  const cut = t.subarray(0, 512 + 1000); // inside a's data; digests match the cut bytes
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(cut)), 'IMAGE_INVALID', /layer test: not a valid tar: Unexpected end of data/);
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(gzip(cut), cut)), 'IMAGE_INVALID', /not a valid gzip-compressed tar/);
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(gzip(t).subarray(0, 100), t, { digest: undefined, size: undefined })), 'IMAGE_INVALID', /gzip-compressed tar: unexpected end of file/);
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(Buffer.alloc(1024, 'x'))), 'IMAGE_INVALID', /Invalid tar header/);
  // GNU sparse ('S'): patch the type flag and fix the header checksum.
  const sparse = Buffer.from(await makeTar([file('s', 'data')]));
  sparse[156] = 'S'.charCodeAt(0);
  sparse.write('        ', 148, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += sparse[i]!;
  sparse.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(sparse)), 'IMAGE_UNSUPPORTED', /tar entry type we do not handle/);
});

test('a tar ending right after the last file (umoci#436: no padding, no end blocks) is accepted', async () => {
  const t = await makeTar([dir('d'), file('d/last', 'n\n')]);
  const unpadded = t.subarray(0, 512 + 512 + 2); // dir header, file header, 2 data bytes
  const root = freshRoot();
  await applyLayer(new StagingTree(root), layer(unpadded));
  assert.is(readFileSync(join(root, 'd/last'), 'utf8'), 'n\n');
  // One byte less is a real truncation.
  await expectGuestCode(applyLayer(new StagingTree(freshRoot()), layer(unpadded.subarray(0, unpadded.length - 1))), 'IMAGE_INVALID', /Unexpected end of data/);
});

test('long names (pax) are handled; overlong components refused', async () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
  const root = freshRoot();
  await apply(root, [[file(long, 'deep')]]);
  assert.is(readFileSync(join(root, long), 'utf8'), 'deep');
  await expectGuestCode(apply(freshRoot(), [[file('x'.repeat(256))]]), 'IMAGE_INVALID', /longer than Linux allows/);
});

test.run();
