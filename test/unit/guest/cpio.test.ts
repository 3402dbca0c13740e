import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cpioChunks, encodeCpio, pad4, sortEntries, type CpioEntry } from '../../../src/guest/cpio.js';
import { GuestError } from '../../../src/guest/errors.js';

/** Walks a newc archive independently of the writer, returning headers and checking padding. */
function parseNewc(buf: Buffer) {
  const out: { name: string; fields: number[]; data: Buffer; offset: number }[] = [];
  let off = 0;
  for (;;) {
    assert.is(off % 4, 0, `record at ${off} is 4-byte aligned`);
    assert.is(buf.toString('ascii', off, off + 6), '070701');
    const fields = Array.from({ length: 13 }, (_, i) => Number.parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16));
    const namesize = fields[11]!;
    const filesize = fields[6]!;
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    assert.is(buf[off + 110 + namesize - 1], 0, 'name is NUL-terminated');
    let p = off + 110 + namesize;
    while (p % 4) assert.is(buf[p++], 0, 'name padding is zero');
    const data = buf.subarray(p, p + filesize);
    p += filesize;
    while (p % 4) assert.is(buf[p++], 0, 'data padding is zero');
    out.push({ name, fields, data, offset: off });
    off = p;
    if (name === 'TRAILER!!!') break;
  }
  assert.is(off, buf.length, 'nothing after the trailer');
  return out;
}

test('exact header layout of a one-file archive', () => {
  const buf = encodeCpio([{ type: 'file', name: 'a', data: Buffer.from('hi'), mode: 0o644 }]);
  const header = '070701' + ['00000001', '000081a4', '00000000', '00000000', '00000001', '00000000', '00000002',
    '00000000', '00000000', '00000000', '00000000', '00000002', '00000000'].join('');
  assert.is(buf.toString('ascii', 0, 110), header);
  assert.equal([...buf.subarray(110, 116)], [0x61, 0, 0x68, 0x69, 0, 0]); // "a\0" (110+2=112, no pad), "hi" + 2 pad
  const trailer = '070701' + ['00000000', '00000000', '00000000', '00000000', '00000001', '00000000', '00000000',
    '00000000', '00000000', '00000000', '00000000', '0000000b', '00000000'].join('');
  assert.is(buf.toString('ascii', 116, 226), trailer);
  assert.is(buf.toString('ascii', 226, 236), 'TRAILER!!!');
  assert.equal([...buf.subarray(236)], [0, 0, 0, 0]); // NUL + 3 bytes pad (110+11=121 → 124)
  assert.is(buf.length, 240);
});

test('pad4', () => {
  assert.equal([0, 1, 2, 3, 4, 5, 110, 111, 112].map(pad4), [0, 3, 2, 1, 0, 3, 2, 1, 0]);
});

test('padding of every name and data length keeps records aligned, with zero padding', () => {
  const entries: CpioEntry[] = [];
  for (let n = 1; n <= 9; n++) {
    for (let d = 0; d <= 5; d++) entries.push({ type: 'file', name: `${'x'.repeat(n)}${d}`, data: Buffer.alloc(d, 0xff) });
  }
  const parsed = parseNewc(encodeCpio(entries));
  assert.is(parsed.length, entries.length + 1);
  for (const r of parsed.slice(0, -1)) assert.is(r.data.length, Number(r.name.at(-1)));
});

test('types, modes, device numbers and symlink targets land in the header fields', () => {
  const parsed = parseNewc(encodeCpio([
    { type: 'dir', name: 'd', mode: 0o1777 },
    { type: 'chardev', name: 'd/console', major: 5, minor: 1 },
    { type: 'symlink', name: 'd/sh', target: '/bin/busybox' },
    { type: 'file', name: 'd/x', data: Buffer.from('abc'), mode: 0o755 },
  ]));
  const by = new Map(parsed.map((r) => [r.name, r]));
  assert.is(by.get('d')!.fields[1], 0o041777);
  assert.is(by.get('d')!.fields[4], 2, 'directories have nlink 2');
  assert.is(by.get('d/console')!.fields[1], 0o020600);
  assert.equal([by.get('d/console')!.fields[9], by.get('d/console')!.fields[10]], [5, 1]);
  assert.is(by.get('d/sh')!.fields[1], 0o120777);
  assert.is(by.get('d/sh')!.data.toString(), '/bin/busybox');
  assert.is(by.get('d/x')!.fields[1], 0o100755);
  for (const r of parsed) {
    assert.is(r.fields[2], 0, 'uid 0');
    assert.is(r.fields[3], 0, 'gid 0');
    assert.is(r.fields[5], 0, 'mtime 0');
  }
});

test('deterministic: input order does not matter; inodes follow sorted order', () => {
  const entries: CpioEntry[] = [
    { type: 'dir', name: 'b' }, { type: 'file', name: 'b/z', data: Buffer.from('1') },
    { type: 'dir', name: 'a' }, { type: 'file', name: 'a-b', data: Buffer.from('2') }, { type: 'symlink', name: 'a/l', target: 'x' },
  ];
  const one = encodeCpio(entries);
  const two = encodeCpio([...entries].reverse());
  assert.ok(one.equals(two));
  const parsed = parseNewc(one);
  assert.equal(parsed.map((r) => r.name), ['a', 'a-b', 'a/l', 'b', 'b/z', 'TRAILER!!!']);
  assert.equal(parsed.map((r) => r.fields[0]), [1, 2, 3, 4, 5, 0]);
  assert.ok(Buffer.concat(cpioChunks(entries)).equals(one));
});

test('invalid entries are CPIO_INVALID errors', () => {
  const bad: Array<[string, CpioEntry[]]> = [
    ['absolute name', [{ type: 'dir', name: '/etc' }]],
    ['dot-dot', [{ type: 'dir', name: 'a' }, { type: 'dir', name: 'a/..' }]],
    ['empty component', [{ type: 'dir', name: 'a' }, { type: 'file', name: 'a//b', data: Buffer.alloc(0) }]],
    ['duplicate', [{ type: 'dir', name: 'a' }, { type: 'file', name: 'a', data: Buffer.alloc(0) }]],
    ['missing parent', [{ type: 'file', name: 'nodir/f', data: Buffer.alloc(0) }]],
    ['parent is a file', [{ type: 'file', name: 'f', data: Buffer.alloc(0) }, { type: 'file', name: 'f/g', data: Buffer.alloc(0) }]],
    ['mode too large', [{ type: 'file', name: 'f', data: Buffer.alloc(0), mode: 0o17777 }]],
    ['empty symlink target', [{ type: 'symlink', name: 'l', target: '' }]],
    ['negative device', [{ type: 'chardev', name: 'c', major: -1, minor: 0 }]],
    ['trailer name', [{ type: 'dir', name: 'TRAILER!!!' }]],
    ['NUL in name', [{ type: 'dir', name: 'a\0b' }]],
  ];
  for (const [why, entries] of bad) {
    try {
      sortEntries(entries);
      assert.unreachable(why);
    } catch (err) {
      assert.instance(err, GuestError, why);
      assert.is((err as GuestError).code, 'CPIO_INVALID', why);
    }
  }
});

const SAMPLE: CpioEntry[] = [
  { type: 'dir', name: 'bin' },
  { type: 'file', name: 'bin/tool', data: randomBytes(70001), mode: 0o755 },
  { type: 'symlink', name: 'bin/sh', target: 'tool' },
  { type: 'dir', name: 'dev' },
  { type: 'chardev', name: 'dev/console', major: 5, minor: 1, mode: 0o600 },
  { type: 'dir', name: 'etc' },
  { type: 'file', name: 'etc/empty', data: Buffer.alloc(0) },
  { type: 'file', name: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n'), mode: 0o640 },
  { type: 'dir', name: 'tmp', mode: 0o1777 },
  { type: 'file', name: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
];

test('GNU cpio -t lists exactly our entries, in our order', () => {
  const r = spawnSync('cpio', ['-t', '--quiet'], { input: encodeCpio(SAMPLE) });
  assert.is(r.status, 0, r.stderr.toString());
  assert.equal(r.stdout.toString().trim().split('\n'), sortEntries(SAMPLE).map((e) => e.name));
});

test('GNU cpio -i extracts what we wrote: bytes, modes, links, device node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vc-cpio-'));
  try {
    const r = spawnSync('cpio', ['-i', '--make-directories', '--preserve-modification-time', '--no-absolute-filenames', '--quiet'], { cwd: dir, input: encodeCpio(SAMPLE) });
    assert.is(r.status, 0, r.stderr.toString());
    for (const e of SAMPLE) {
      const path = join(dir, e.name);
      const st = lstatSync(path);
      if (e.type === 'file') {
        assert.ok(st.isFile(), e.name);
        assert.ok(readFileSync(path).equals(Buffer.from(e.data)), `${e.name} bytes`);
        assert.is(st.mode & 0o7777, e.mode ?? 0o644, `${e.name} mode`);
        assert.is(st.mtimeMs, 0, `${e.name} mtime`);
      } else if (e.type === 'dir') {
        assert.ok(st.isDirectory(), e.name);
        assert.is(st.mode & 0o7777, e.mode ?? 0o755, `${e.name} mode`);
      } else if (e.type === 'symlink') {
        assert.ok(st.isSymbolicLink(), e.name);
        assert.is(readlinkSync(path), e.target);
      } else {
        assert.ok(st.isCharacterDevice(), e.name);
        // Linux dev_t encoding: major in bits 8..19, minor in bits 0..7 (for small numbers).
        assert.equal([Math.floor(st.rdev / 256) & 0xfff, st.rdev & 0xff], [e.major, e.minor]);
        assert.is(st.mode & 0o7777, e.mode ?? 0o600);
      }
      assert.is(st.uid, 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
