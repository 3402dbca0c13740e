// The rules for hostile layer entries (docs/images-and-rootfs.md, "Rules for layer entries"), one
// case each: every case is either refused with the documented code and a message naming the
// entry, or neutralised as documented; after each, nothing outside the root changed and the tree
// keeps the invariants (no device node, set-id bits only where allowed, no whiteout names).
// Tars are written byte for byte (hostile-tar.ts), so malformed headers can be expressed.
// layer-fuzz.test.ts mixes the same kinds of entries at random.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestError } from '../../../../src/guest/errors.js';
import type { StagingTree } from '../../../../src/guest/image/staging.js';
import { badRefusal, extract, makeSandbox, rawTar, removeSandbox, snapshotOutside, treeViolations, type RawEntry, type Sandbox } from './hostile-tar.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-layer-hostile-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

type Refuse = { code: string; message: RegExp };
type Check = (root: string, tree: StagingTree, box: Sandbox) => void;
interface Case {
  name: string;
  /** Layers, bottom first; a function when entries need the sandbox's paths. */
  layers: RawEntry[][] | ((box: Sandbox) => RawEntry[][]);
  /** A Buffer[] of whole layers instead (for cut or patched archives). */
  blobs?: (box: Sandbox) => Buffer[];
  expect: Refuse | Check;
}

const file = (name: string | Buffer, data: string | Buffer = name, extra: Partial<RawEntry> = {}): RawEntry => ({ name, data, ...extra });
const dir = (name: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: '5', mode: 0o755, ...extra });
const symlink = (name: string, target: string): RawEntry => ({ name, type: '2', linkname: target, mode: 0o777 });
const hardlink = (name: string, target: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, type: '1', linkname: target, ...extra });
const refuse = (code: string, message: RegExp): Refuse => ({ code, message });
const unsafe = (message: RegExp) => refuse('IMAGE_UNSAFE', message);
const invalid = (message: RegExp) => refuse('IMAGE_INVALID', message);
const ls = (path: string) => readdirSync(path).sort();
const modeOf = (path: string) => lstatSync(path).mode & 0o7777;

const cases: Case[] = [
  // Names: relative to the root, no "..", however the name is spelled in the tar.
  { name: '".." first', layers: [[file('../escape')]], expect: unsafe(/entry "\.\.\/escape" contains "\.\."/) },
  { name: '".." in the middle', layers: [[dir('a'), file('a/../../escape')]], expect: unsafe(/entry "a\/\.\.\/\.\.\/escape" contains "\.\."/) },
  { name: '".." from a pax path', layers: [[file('innocent', 'x', { pax: { path: '../escape' } })]], expect: unsafe(/entry "\.\.\/escape" contains/) },
  { name: '".." from a GNU long name', layers: [[file('innocent', 'x', { longName: `../${'x'.repeat(120)}` })]], expect: unsafe(/entry "\.\.\/x+" contains/) },
  { name: '".." from the ustar prefix', layers: [[file('escape', 'x', { prefix: '..' })]], expect: unsafe(/entry "\.\.\/escape" contains/) },
  { name: 'absolute', layers: (b) => [[file(`${b.outside}/abs`)]], expect: unsafe(/is an absolute path/) },
  { name: 'absolute from a pax path', layers: (b) => [[file('innocent', 'x', { pax: { path: `${b.outside}/abs` } })]], expect: unsafe(/outside\/abs" is an absolute path/) },

  // Symlinks: made as they are (they resolve inside the guest's root), never written through.
  { name: 'symlink outside, then a file through it', layers: (b) => [[symlink('s', b.outside), file('s/pwned')]], expect: unsafe(/entry "s\/pwned" goes through "s", a symlink/) },
  { name: 'relative symlink outside, then a dir through it', layers: [[symlink('up', '../outside'), dir('up/d')]], expect: unsafe(/entry "up\/d" goes through "up"/) },
  { name: 'symlink chain', layers: (b) => [[symlink('c1', 'c2'), symlink('c2', b.outside), file('c1/x')]], expect: unsafe(/entry "c1\/x" goes through "c1"/) },
  { name: 'a symlink replaces a directory mid-layer', layers: (b) => [[dir('d'), file('d/f'), symlink('d', b.outside), file('d/g')]], expect: unsafe(/entry "d\/g" goes through "d"/) },
  { name: 'a lower layer\'s symlink', layers: (b) => [[dir('lib'), symlink('lib/x', b.outside)], [file('lib/x/keep')]], expect: unsafe(/entry "lib\/x\/keep" goes through "lib\/x"/) },
  {
    name: 'a file replaces a symlink of its name (not written through)',
    layers: (b) => [[symlink('k', `${b.outside}/keep`), file('k', 'mine')]],
    expect: (root) => assert.is(readFileSync(join(root, 'k'), 'utf8'), 'mine'),
  },

  // Hardlinks: to an entry already in the tree, by a name checked like any other.
  { name: 'hardlink to ".."', layers: [[hardlink('h', '../outside/keep')]], expect: unsafe(/hardlink "h": entry "\.\.\/outside\/keep" contains "\.\."/) },
  { name: 'hardlink to an absolute path', layers: (b) => [[hardlink('h', `${b.outside}/keep`)]], expect: unsafe(/hardlink "h": entry ".*" is an absolute path/) },
  { name: 'hardlink through a symlink', layers: (b) => [[symlink('s', b.outside), hardlink('h', 's/keep')]], expect: unsafe(/entry "h" goes through "s", a symlink/) },
  {
    name: 'hardlink to a symlink that points outside: a second name for the symlink',
    layers: (b) => [[symlink('s', `${b.outside}/keep`), hardlink('h', 's')]],
    expect: (root, _t, b) => {
      assert.ok(lstatSync(join(root, 'h')).isSymbolicLink());
      assert.is(lstatSync(join(root, 'h')).ino, lstatSync(join(root, 's')).ino);
      assert.is(lstatSync(join(b.outside, 'keep')).nlink, 1);
    },
  },
  { name: 'hardlink to nothing', layers: [[hardlink('h', 'missing')]], expect: invalid(/entry "h" is a hardlink to "missing", which is not in the image/) },
  { name: 'hardlink to a directory', layers: [[dir('d'), hardlink('h', 'd')]], expect: invalid(/entry "h" is a hardlink to the directory "d"/) },
  { name: 'hardlink below itself', layers: [[dir('a'), file('a/f'), hardlink('a', 'a/f')]], expect: invalid(/entry "a" is a hardlink to "a\/f", below itself/) },
  { name: 'hardlink with data', layers: [[file('f'), hardlink('h', 'f', { data: 'hidden' })]], expect: invalid(/entry "h" is a link with 6 bytes of data/) },

  // Devices: never made; like any entry they replace what was there.
  {
    name: 'char and block devices, fifo with every mode bit',
    layers: [[file('null', 'lower'), file('sda', 'lower')], [
      { name: 'null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: 'sda', type: '4', mode: 0o666, devmajor: 8, devminor: 0 },
      { name: 'pipe', type: '6', mode: 0o7777 },
    ]],
    expect: (root, tree) => {
      assert.equal(ls(root), ['pipe']);
      assert.is(tree.stats.skippedDevices, 2);
      assert.ok(lstatSync(join(root, 'pipe')).isFIFO());
      assert.is(modeOf(join(root, 'pipe')), 0o777);
    },
  },
  { name: 'directory with data (tar-stream never ends its stream)', layers: [[dir('d', { data: 'x'.repeat(23) })]], expect: invalid(/entry "d" is a directory with 23 bytes of data/) },
  { name: 'symlink with data', layers: [[{ ...symlink('s', 'f'), data: 'x' }]], expect: invalid(/entry "s" is a symlink with 1 bytes of data/) },

  // Set-uid and set-gid: kept on regular files; directories keep set-gid and sticky only.
  {
    name: 'set-id bits',
    layers: [[
      file('su', 'x', { mode: 0o6755, uid: 0 }),
      dir('d', { mode: 0o7777 }),
      file('plain', 'x', { mode: 0o644 }),
      hardlink('plain2', 'plain', { mode: 0o6777 }),
    ]],
    expect: (root) => {
      assert.is(modeOf(join(root, 'su')), 0o6755);
      assert.is(modeOf(join(root, 'd')), 0o3777);
      assert.is(modeOf(join(root, 'plain')), 0o644, 'a hardlink has no mode of its own');
    },
  },

  // Sizes and truncation: refused, naming the entry being read or the last one read.
  { name: 'huge declared size, data cut short', layers: [[file('big', 'only this', { size: 0o77777777777 })]], expect: invalid(/Unexpected end of data \(in entry "big"\)/) },
  { name: 'base-256 size beyond 2^53', layers: [[file('big', 'x', { size: Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) })]], expect: invalid(/entry "big" has an invalid size/) },
  { name: 'unparsable base-256 size', layers: [[file('odd', 'x', { size: Buffer.from([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) })]], expect: invalid(/entry "odd" has an invalid size \(null\)/) },
  { name: 'negative size', layers: [[file('a'), file('neg', 'x', { size: -5 })]], expect: invalid(/Invalid header \(after entry "a"\)/) },
  { name: 'pax size not a number', layers: [[file('a'), file('p', 'x', { pax: { size: 'lots' } })]], expect: invalid(/Invalid header \(after entry "a"\)/) },
  { name: 'bad checksum', layers: [[file('a'), file('b', 'x', { badChecksum: true })]], expect: invalid(/Invalid tar header.* \(after entry "a"\)/) },
  { name: 'no magic (v7)', layers: [[file('old', 'x', { magic: 'v7' })]], expect: invalid(/unknown format\. \(before the first entry\)/) },
  { name: 'cut inside a header', layers: [], blobs: () => [rawTar([file('a'), file('b')]).subarray(0, 1024 + 100)], expect: invalid(/Unexpected end of data \(after entry "a"\)/) },
  { name: 'a 5 MiB pax header', layers: [[file('p', 'x', { pax: { comment: 'c'.repeat(5 << 20) } })]], expect: invalid(/Header exceeds max size \(before the first entry\)/) },

  // Long names: pax and GNU long names work; Linux limits are refused.
  {
    name: 'pax and GNU long names and link names',
    layers: [[file(`p${'x'.repeat(50)}`, 'pax', { pax: { path: `${'d'.repeat(200)}/${'f'.repeat(200)}` } }),
      file('g', 'gnu', { longName: `${'e'.repeat(200)}/${'g'.repeat(250)}` }),
      { ...symlink('l', 'short'), longLink: 't'.repeat(300) }]],
    expect: (root) => {
      assert.is(readFileSync(join(root, 'd'.repeat(200), 'f'.repeat(200)), 'utf8'), 'pax');
      assert.is(readFileSync(join(root, 'e'.repeat(200), 'g'.repeat(250)), 'utf8'), 'gnu');
      assert.is(readlinkSync(join(root, 'l')), 't'.repeat(300));
    },
  },
  { name: 'a 256-byte component', layers: [[file('n', 'x', { pax: { path: 'y'.repeat(256) } })]], expect: invalid(/entry "y+…" is longer than Linux allows/) },
  { name: 'NUL in a pax path', layers: [[file('n', 'x', { pax: { path: 'a\0b' } })]], expect: invalid(/entry "a\\u0000b" contains a NUL byte/) },

  // Whiteouts: ".wh.NAME" and ".wh..wh..opq" act on lower layers; odd ones are refused.
  {
    name: 'opaque directory and AUFS bookkeeping',
    layers: [[dir('o'), file('o/lower')], [file('o/.wh..wh..opq', ''), file('o/upper'), file('.wh..wh.plnk', '')]],
    expect: (root) => {
      assert.equal(ls(join(root, 'o')), ['upper']);
      assert.equal(ls(root), ['o']);
    },
  },
  { name: '".wh." names nothing', layers: [[file('.wh.', '')]], expect: unsafe(/whiteout "\.wh\." names no entry/) },
  { name: '".wh.." (the directory itself)', layers: [[dir('d'), file('d/.wh..', '')]], expect: unsafe(/whiteout "d\/\.wh\.\." names no entry/) },
  { name: '".wh..." (the parent)', layers: [[dir('d'), file('d/.wh...', '')]], expect: unsafe(/whiteout "d\/\.wh\.\.\." names no entry/) },
  { name: 'an entry inside a whiteout', layers: [[file('x/.wh.y/z')]], expect: invalid(/entry "x\/\.wh\.y\/z" is inside "\.wh\.y", a whiteout name/) },
  { name: 'whiteout through a symlink', layers: (b) => [[symlink('s', b.outside), file('s/.wh.keep', '')]], expect: unsafe(/entry "s\/\.wh\.keep" goes through "s"/) },
  {
    name: 'whiteout of a directory the same layer fills (before or after the whiteout)',
    layers: [[dir('d'), file('d/lower'), dir('e'), file('e/lower')], [file('d/new'), file('.wh.d', ''), file('.wh.e', ''), file('e/new')]],
    expect: (root) => {
      assert.equal(ls(join(root, 'd')), ['new']);
      assert.equal(ls(join(root, 'e')), ['new']);
    },
  },
  { name: 'whiteout as a directory entry', layers: [[file('a')], [dir('.wh.a')]], expect: (root) => assert.equal(ls(root), []) },

  // Duplicates: the last entry of a name wins, whatever the kinds.
  {
    name: 'duplicate names',
    layers: [[file('f', 'one'), file('f', 'two'), file('fd'), dir('fd'), dir('df'), file('df/child'), file('df', 'file now'), dir('dd', { mode: 0o700 }), dir('dd', { mode: 0o750 })]],
    expect: (root) => {
      assert.is(readFileSync(join(root, 'f'), 'utf8'), 'two');
      assert.ok(statSync(join(root, 'fd')).isDirectory());
      assert.is(readFileSync(join(root, 'df'), 'utf8'), 'file now');
      assert.is(modeOf(join(root, 'dd')), 0o750);
    },
  },

  // Names that are not UTF-8: each invalid byte becomes U+FFFD, so such names may collide (last wins).
  {
    name: 'non-UTF-8 names, overlong "." and "/"',
    layers: [[
      file(Buffer.from([0x61, 0xff]), 'first'),
      file(Buffer.from([0x61, 0xfe]), 'second'),
      file(Buffer.from([0xc0, 0xae, 0xc0, 0xae, 0xc0, 0xaf, 0x78]), 'overlong'),
    ]],
    expect: (root) => {
      assert.equal(ls(root), ['a\ufffd', '\ufffd'.repeat(6) + 'x']);
      assert.is(readFileSync(join(root, 'a\ufffd'), 'utf8'), 'second');
    },
  },

  // Other fields.
  { name: 'uid beyond uid_t', layers: [[file('u', 'x', { pax: { uid: '4294967296' } })]], expect: invalid(/entry "u" has an invalid uid \(4294967296\)/) },
  {
    name: 'mtime beyond a Date',
    layers: [[file('t', 'x', { mtime: Buffer.from([0x80, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) })]],
    expect: (root) => assert.is(statSync(join(root, 't')).mtimeMs, 0),
  },
  { name: 'the root as a symlink', layers: [[symlink('./', '/')]], expect: invalid(/entry "\.\/" names the image root but is not a directory/) },
  { name: 'GNU sparse', layers: [[file('s', 'x', { type: 'S' })]], expect: refuse('IMAGE_UNSUPPORTED', /entry "s" has a tar entry type we do not handle/) },
];

for (const privileged of isRoot ? [true, false] : [false]) {
  test(`hostile entries are refused or neutralised by rule (privileged: ${privileged})`, async () => {
    let n = 0;
    for (const c of cases) {
      const box = makeSandbox(join(scratch, `${privileged ? 'p' : 'u'}${n++}`));
      const before = snapshotOutside(box);
      const layers = c.blobs ? c.blobs(box) : (typeof c.layers === 'function' ? c.layers(box) : c.layers).map((l) => rawTar(l));
      const { tree, error } = await extract(box.root, layers, privileged);
      const where = `case "${c.name}"`;
      if ('code' in c.expect) {
        assert.ok(error, `${where}: expected ${c.expect.code}, but it was extracted`);
        assert.is(badRefusal(error), undefined, where);
        assert.is((error as GuestError).code, c.expect.code, `${where}: ${(error as Error).message}`);
        assert.match((error as Error).message, c.expect.message, where);
      } else {
        if (error) assert.unreachable(`${where}: ${(error as Error).stack}`);
        c.expect(box.root, tree!, box);
      }
      assert.equal(snapshotOutside(box), before, `${where}: changed something outside the root`);
      assert.equal(treeViolations(box.root), [], where);
      removeSandbox(box);
    }
  });
}
if (!isRoot) console.log('SKIP hostile entries, privileged: not running as root');

test.run();
