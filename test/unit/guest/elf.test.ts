import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, realpathSync } from 'node:fs';
import { elfProgramTypes, elfSectionData, elfSections, isStaticElf, PT_INTERP, readElfHeader } from '../../../src/guest/elf.js';
import { GuestError } from '../../../src/guest/errors.js';

/**
 * A minimal ELF64 file: header, program headers of the given types, section data, then the
 * section header table at the very end (so any truncation cuts into it).
 */
function buildElf(opts: { sections?: Array<[string, Buffer]>; phdrs?: number[]; bigEndian?: boolean }): Buffer {
  const le = !opts.bigEndian;
  const sections = opts.sections ?? [];
  const phdrs = opts.phdrs ?? [];
  const names = ['', ...sections.map(([n]) => n), '.shstrtab'];
  const nameOffsets: number[] = [];
  let strtab = Buffer.alloc(0);
  for (const n of names) {
    nameOffsets.push(strtab.length);
    strtab = Buffer.concat([strtab, Buffer.from(`${n}\0`)]);
  }
  const datas = [...sections.map(([, d]) => d), strtab];
  const phoff = 64;
  let off = phoff + phdrs.length * 56;
  const offsets = datas.map((d) => { const o = off; off += d.length; return o; });
  const shoff = off;
  const shnum = datas.length + 1;
  const buf = Buffer.alloc(shoff + shnum * 64);
  const w16 = (o: number, v: number) => (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o));
  const w32 = (o: number, v: number) => (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  const w64 = (o: number, v: number) => (le ? buf.writeBigUInt64LE(BigInt(v), o) : buf.writeBigUInt64BE(BigInt(v), o));
  buf.write('\x7fELF', 0, 'latin1');
  buf[4] = 2; buf[5] = le ? 1 : 2; buf[6] = 1;
  w16(0x10, 1); w16(0x12, 62); w32(0x14, 1);
  w64(0x20, phdrs.length ? phoff : 0); w64(0x28, shoff);
  w16(0x34, 64); w16(0x36, 56); w16(0x38, phdrs.length); w16(0x3a, 64); w16(0x3c, shnum); w16(0x3e, shnum - 1);
  phdrs.forEach((t, i) => w32(phoff + i * 56, t));
  datas.forEach((d, i) => {
    d.copy(buf, offsets[i]);
    const sh = shoff + (i + 1) * 64;
    w32(sh, nameOffsets[i + 1]!); w32(sh + 4, i === datas.length - 1 ? 3 : 1);
    w64(sh + 0x18, offsets[i]!); w64(sh + 0x20, d.length);
  });
  return buf;
}

function expectElfError(fn: () => unknown, why: string): GuestError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, GuestError, `${why}: ${String(err)}`);
    assert.is((err as GuestError).code, 'ELF_INVALID', why);
    return err as GuestError;
  }
  assert.unreachable(`${why}: expected ELF_INVALID`);
  throw new Error('unreachable');
}

const modinfo = Buffer.from('license=GPL\0depends=a,b\0name=x\0\0\0');

test('sections and their data, little and big endian', () => {
  for (const bigEndian of [false, true]) {
    const elf = buildElf({ sections: [['.text', Buffer.from([0x90, 0xc3])], ['.modinfo', modinfo]], bigEndian });
    assert.equal(elfSections(elf, 'x').map((s) => s.name), ['', '.text', '.modinfo', '.shstrtab']);
    assert.ok(elfSectionData(elf, '.modinfo', 'x')!.equals(modinfo));
    assert.is(elfSectionData(elf, '.nothere', 'x'), undefined);
    assert.is(readElfHeader(elf, 'x').machine, 62);
  }
});

test('program headers: PT_INTERP means dynamic', () => {
  assert.equal(elfProgramTypes(buildElf({ phdrs: [6, 3, 1, 2] }), 'x'), [6, 3, 1, 2]);
  assert.not.ok(isStaticElf(buildElf({ phdrs: [6, PT_INTERP, 1, 2] }), 'x'));
  assert.ok(isStaticElf(buildElf({ phdrs: [1, 1, 2, 7] }), 'x'), 'static-pie has PT_DYNAMIC but no PT_INTERP');
});

test('real binaries: the host busybox is static, node is dynamic', () => {
  assert.ok(isStaticElf(readFileSync('/bin/busybox'), '/bin/busybox'));
  const node = realpathSync(process.execPath);
  assert.not.ok(isStaticElf(readFileSync(node), node));
});

test('not ELF, 32-bit, bad byte order: ELF_INVALID naming the file', () => {
  const err = expectElfError(() => elfSections(Buffer.from('#!/bin/sh\necho hi\n'.repeat(10)), '/some/file.ko'), 'text');
  assert.match(err.message, '/some/file.ko');
  const e32 = buildElf({}); e32[4] = 1;
  expectElfError(() => elfSections(e32, 'x'), '32-bit');
  const bo = buildElf({}); bo[5] = 7;
  expectElfError(() => elfSections(bo, 'x'), 'byte order');
  expectElfError(() => elfSections(Buffer.alloc(0), 'x'), 'empty');
});

test('every truncation of a valid file is ELF_INVALID', () => {
  const elf = buildElf({ sections: [['.modinfo', modinfo]], phdrs: [1, 3] });
  for (let len = 0; len < elf.length; len++) expectElfError(() => elfSections(elf.subarray(0, len), 'x'), `truncated to ${len}`);
  for (let len = 0; len < 64 + 2 * 56; len++) expectElfError(() => elfProgramTypes(elf.subarray(0, len), 'x'), `phdrs truncated to ${len}`);
});

test('out-of-range offsets and indexes are ELF_INVALID', () => {
  const base = buildElf({ sections: [['.modinfo', modinfo]] });
  const shoff = Number(base.readBigUInt64LE(0x28));
  const mutate = (f: (b: Buffer) => void) => { const b = Buffer.from(base); f(b); return b; };
  expectElfError(() => elfSections(mutate((b) => b.writeBigUInt64LE(0xffffffffffffffffn, 0x28)), 'x'), 'huge e_shoff');
  expectElfError(() => elfSections(mutate((b) => b.writeUInt16LE(99, 0x3e)), 'x'), 'shstrndx out of range');
  expectElfError(() => elfSections(mutate((b) => b.writeUInt16LE(8, 0x3a)), 'x'), 'tiny shentsize');
  expectElfError(() => elfSections(mutate((b) => b.writeBigUInt64LE(1n << 40n, shoff + 64 + 0x20)), 'x'), 'section size past the end');
  expectElfError(() => elfSections(mutate((b) => b.writeUInt32LE(1 << 30, shoff + 64)), 'x'), 'name offset past the table');
  expectElfError(() => elfProgramTypes(mutate((b) => { b.writeBigUInt64LE(64n, 0x20); b.writeUInt16LE(0xfff0, 0x38); }), 'x'), 'too many phdrs');
});

test('random corruption never escapes as anything but ELF_INVALID', () => {
  const base = buildElf({ sections: [['.modinfo', modinfo], ['.x', Buffer.alloc(40, 1)]], phdrs: [1, 3] });
  let seed = 12345;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(base);
    for (let k = 0; k < 1 + rand(4); k++) b[rand(b.length)] = rand(256);
    for (const fn of [() => elfSections(b, 'x'), () => elfProgramTypes(b, 'x'), () => elfSectionData(b, '.modinfo', 'x')]) {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof GuestError) || err.code !== 'ELF_INVALID') throw new Error(`iteration ${i}: unexpected ${String(err)}`);
      }
    }
  }
});

test.run();
