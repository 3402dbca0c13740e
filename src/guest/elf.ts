// Just enough ELF64 reading for our needs: the `.modinfo` section of kernel modules, the program
// headers of busybox (is it static?), and what a prebuilt addon asks of the dynamic loader. Every offset read from the file is bounds-checked,
// so a truncated or garbage file is a GuestError ELF_INVALID, never a crash or an out-of-range read.
import { GuestError } from './errors.js';

export const PT_INTERP = 3;
const SHT_NOBITS = 8;
const SHN_XINDEX = 0xffff;
const PN_XNUM = 0xffff;

export interface ElfHeader {
  littleEndian: boolean;
  type: number;
  machine: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ElfSection { name: string; type: number; offset: number; size: number; link: number; info: number }

/** Reads integers of the file's byte order with bounds checks; `what` names the file in errors. */
class Reader {
  constructor(readonly buf: Buffer, readonly le: boolean, readonly what: string) {}

  u16(off: number): number {
    this.need(off, 2);
    return this.le ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  u32(off: number): number {
    this.need(off, 4);
    return this.le ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }

  /** A 64-bit offset or size; anything beyond the file is invalid anyway, so numbers suffice. */
  u64(off: number): number {
    this.need(off, 8);
    const v = this.le ? this.buf.readBigUInt64LE(off) : this.buf.readBigUInt64BE(off);
    if (v > BigInt(this.buf.length)) return Number.MAX_SAFE_INTEGER;
    return Number(v);
  }

  need(off: number, len: number): void {
    if (off < 0 || len < 0 || off + len > this.buf.length) throw elfError(this.what, `truncated (needs bytes ${off}..${off + len}, file has ${this.buf.length})`);
  }
}

export function readElfHeader(buf: Buffer, what: string): ElfHeader {
  if (buf.length < 64 || buf[0] !== 0x7f || buf.toString('latin1', 1, 4) !== 'ELF') throw elfError(what, 'not an ELF file');
  if (buf[4] !== 2) throw elfError(what, `not a 64-bit ELF file (class ${buf[4]})`);
  if (buf[5] !== 1 && buf[5] !== 2) throw elfError(what, `unknown byte order ${buf[5]}`);
  const r = new Reader(buf, buf[5] === 1, what);
  return {
    littleEndian: r.le,
    type: r.u16(0x10),
    machine: r.u16(0x12),
    phoff: r.u64(0x20),
    shoff: r.u64(0x28),
    phentsize: r.u16(0x36),
    phnum: r.u16(0x38),
    shentsize: r.u16(0x3a),
    shnum: r.u16(0x3c),
    shstrndx: r.u16(0x3e),
  };
}

/** All section headers with their names resolved through the section-name string table. */
export function elfSections(buf: Buffer, what: string): ElfSection[] {
  const h = readElfHeader(buf, what);
  const r = new Reader(buf, h.littleEndian, what);
  if (h.shoff === 0) return [];
  if (h.shentsize < 64) throw elfError(what, `section header size ${h.shentsize} < 64`);
  const raw = (i: number) => {
    const off = h.shoff + i * h.shentsize;
    r.need(off, 64);
    return {
      nameOff: r.u32(off), type: r.u32(off + 4), offset: r.u64(off + 0x18),
      size: r.u64(off + 0x20), link: r.u32(off + 0x28), info: r.u32(off + 0x2c),
    };
  };
  // Files with >= 0xff00 sections keep the real count / string-table index in section 0.
  const first = raw(0);
  const shnum = h.shnum === 0 ? first.size : h.shnum;
  const shstrndx = h.shstrndx === SHN_XINDEX ? first.link : h.shstrndx;
  r.need(h.shoff, shnum * h.shentsize);
  const headers = Array.from({ length: shnum }, (_, i) => raw(i));
  for (const [i, s] of headers.entries()) {
    if (s.type !== SHT_NOBITS && s.size > 0 && s.offset + s.size > buf.length) {
      throw elfError(what, `section ${i} extends past the end of the file`);
    }
  }
  const strtab = headers[shstrndx];
  if (!strtab) throw elfError(what, `section-name table index ${shstrndx} out of range (${shnum} sections)`);
  return headers.map((s) => ({
    name: cString(buf, strtab.offset, strtab.size, s.nameOff, what),
    type: s.type, offset: s.offset, size: s.size, link: s.link, info: s.info,
  }));
}

/** The bytes of the first section named `name`, or undefined when there is none. */
export function elfSectionData(buf: Buffer, name: string, what: string): Buffer | undefined {
  const s = elfSections(buf, what).find((x) => x.name === name);
  if (!s) return undefined;
  return s.type === SHT_NOBITS ? Buffer.alloc(0) : buf.subarray(s.offset, s.offset + s.size);
}

/** p_type of every program header. */
export function elfProgramTypes(buf: Buffer, what: string): number[] {
  const h = readElfHeader(buf, what);
  const r = new Reader(buf, h.littleEndian, what);
  if (h.phoff === 0 || h.phnum === 0) return [];
  if (h.phentsize < 56) throw elfError(what, `program header size ${h.phentsize} < 56`);
  let phnum = h.phnum;
  if (phnum === PN_XNUM) {
    // The real count lives in sh_info of section 0.
    if (h.shoff === 0) throw elfError(what, 'extended program header count without section 0');
    phnum = r.u32(h.shoff + 0x2c);
  }
  r.need(h.phoff, phnum * h.phentsize);
  return Array.from({ length: phnum }, (_, i) => r.u32(h.phoff + i * h.phentsize));
}

/**
 * Statically linked = no PT_INTERP (no dynamic loader is asked for). A static-pie binary still
 * has PT_DYNAMIC but runs without any library, so only PT_INTERP matters for the guest.
 */
export function isStaticElf(buf: Buffer, what: string): boolean {
  return !elfProgramTypes(buf, what).includes(PT_INTERP);
}

/** What a dynamically linked file asks of the loader: its DT_NEEDED libraries and symbol versions. */
export interface ElfDynamicNeeds {
  /** DT_NEEDED entries, in file order (e.g. libc.so.6). */
  libraries: string[];
  /** Version names required from those libraries (.gnu.version_r), e.g. GLIBC_2.34, sorted. */
  versions: string[];
}

const SHT_DYNAMIC = 6;
const SHT_GNU_VERNEED = 0x6ffffffe;
const DT_NULL = 0;
const DT_NEEDED = 1;

export function elfDynamicNeeds(buf: Buffer, what: string): ElfDynamicNeeds {
  const h = readElfHeader(buf, what);
  const r = new Reader(buf, h.littleEndian, what);
  const sections = elfSections(buf, what);
  const strings = (index: number) => {
    const t = sections[index];
    if (!t) throw elfError(what, `string table index ${index} out of range`);
    return (off: number) => cString(buf, t.offset, t.size, off, what);
  };
  const libraries: string[] = [];
  for (const s of sections.filter((x) => x.type === SHT_DYNAMIC)) {
    const str = strings(s.link);
    for (let off = s.offset; off + 16 <= s.offset + s.size; off += 16) {
      const tag = r.u64(off);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) libraries.push(str(r.u64(off + 8)));
    }
  }
  // Verneed: a chain of {vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32}, each
  // with vn_cnt aux entries {vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32}.
  const versions = new Set<string>();
  for (const s of sections.filter((x) => x.type === SHT_GNU_VERNEED)) {
    const str = strings(s.link);
    let entry = s.offset;
    for (let n = 0; n < s.info; n++) {
      if (entry + 16 > s.offset + s.size) throw elfError(what, 'version-needed entry past its section');
      let aux = entry + r.u32(entry + 8);
      for (let k = 0; k < r.u16(entry + 2); k++) {
        if (aux + 16 > s.offset + s.size) throw elfError(what, 'version-needed aux entry past its section');
        versions.add(str(r.u32(aux + 8)));
        const next = r.u32(aux + 12);
        if (next === 0) break;
        aux += next;
      }
      const next = r.u32(entry + 12);
      if (next === 0) break;
      entry += next;
    }
  }
  return { libraries, versions: [...versions].sort() };
}

function cString(buf: Buffer, tableOff: number, tableSize: number, off: number, what: string): string {
  if (off >= tableSize) throw elfError(what, `section name offset ${off} outside the name table`);
  const end = buf.indexOf(0, tableOff + off);
  if (end < 0 || end >= tableOff + tableSize) throw elfError(what, 'unterminated section name');
  return buf.toString('latin1', tableOff + off, end);
}

function elfError(what: string, why: string): GuestError {
  return new GuestError('ELF_INVALID', `${what}: invalid ELF file: ${why}`);
}
