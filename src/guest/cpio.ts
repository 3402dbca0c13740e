// A writer for the cpio "newc" format (the one the Linux kernel unpacks as initramfs), written here
// because it is ~100 lines and we need byte-for-byte deterministic output: every entry has
// mtime 0, uid/gid 0, entries are sorted by name and inode numbers follow that order, so the same
// entries always give the same archive (and the same content hash).
//
// newc layout, per entry: a 110-byte ASCII header ("070701" + 13 fields of 8 hex digits), the
// name with its NUL, zero padding to a multiple of 4, the data, zero padding to a multiple of 4.
// The archive ends with an entry named "TRAILER!!!".
import { GuestError } from './errors.js';

export type CpioEntry =
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'file'; name: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'chardev'; name: string; major: number; minor: number; mode?: number };

export const NEWC_MAGIC = '070701';
export const NEWC_HEADER_SIZE = 110;
export const TRAILER_NAME = 'TRAILER!!!';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAX_U32 = 0xffffffff;

const DEFAULT_MODE: Record<CpioEntry['type'], number> = { dir: 0o755, file: 0o644, symlink: 0o777, chardev: 0o600 };

/**
 * Validates entries and returns them sorted by name (byte order of the UTF-8 names, so a directory
 * always precedes what is inside it). Names are relative ("bin/sh", not "/bin/sh") so that
 * `cpio -i` extracts below the current directory; every parent must itself be a 'dir' entry,
 * since the kernel silently drops a file whose directory does not exist.
 */
export function sortEntries(entries: readonly CpioEntry[]): CpioEntry[] {
  const byName = new Map<string, CpioEntry>();
  for (const entry of entries) {
    checkEntry(entry);
    if (byName.has(entry.name)) throw invalid(entry.name, 'appears twice');
    byName.set(entry.name, entry);
  }
  for (const entry of byName.values()) {
    const slash = entry.name.lastIndexOf('/');
    if (slash < 0) continue;
    const parent = entry.name.slice(0, slash);
    if (byName.get(parent)?.type !== 'dir') throw invalid(entry.name, `its directory "${parent}" is not a dir entry`);
  }
  return [...byName.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/** The archive as a list of chunks (headers, names, data, padding), to write without one big copy. */
export function cpioChunks(entries: readonly CpioEntry[]): Buffer[] {
  const chunks: Buffer[] = [];
  sortEntries(entries).forEach((entry, index) => {
    // Inode 0 is left to the trailer; numbering follows the sorted order, so it is deterministic.
    const data = entryData(entry);
    pushRecord(chunks, entry.name, {
      ino: index + 1,
      mode: typeBits(entry) | (entry.type === 'symlink' ? 0o777 : entry.mode ?? DEFAULT_MODE[entry.type]),
      nlink: entry.type === 'dir' ? 2 : 1,
      rdevmajor: entry.type === 'chardev' ? entry.major : 0,
      rdevminor: entry.type === 'chardev' ? entry.minor : 0,
    }, data);
  });
  pushRecord(chunks, TRAILER_NAME, { ino: 0, mode: 0, nlink: 1, rdevmajor: 0, rdevminor: 0 }, Buffer.alloc(0));
  return chunks;
}

export function encodeCpio(entries: readonly CpioEntry[]): Buffer {
  return Buffer.concat(cpioChunks(entries));
}

/** Bytes of zero padding that bring `length` to a multiple of 4. */
export function pad4(length: number): number {
  return (4 - (length % 4)) % 4;
}

interface HeaderFields { ino: number; mode: number; nlink: number; rdevmajor: number; rdevminor: number }

function pushRecord(chunks: Buffer[], name: string, f: HeaderFields, data: Buffer): void {
  const nameBytes = Buffer.from(`${name}\0`);
  // Field order of newc: ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
  // rdevminor namesize check. uid, gid, mtime, dev and check are always 0.
  const fields = [f.ino, f.mode, 0, 0, f.nlink, 0, data.length, 0, 0, f.rdevmajor, f.rdevminor, nameBytes.length, 0];
  const header = NEWC_MAGIC + fields.map((v) => v.toString(16).padStart(8, '0')).join('');
  chunks.push(Buffer.from(header, 'ascii'), nameBytes, Buffer.alloc(pad4(NEWC_HEADER_SIZE + nameBytes.length)));
  if (data.length > 0) chunks.push(data, Buffer.alloc(pad4(data.length)));
}

function entryData(entry: CpioEntry): Buffer {
  if (entry.type === 'file') return Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
  if (entry.type === 'symlink') return Buffer.from(entry.target); // newc stores a link's target as its data
  return Buffer.alloc(0);
}

function typeBits(entry: CpioEntry): number {
  switch (entry.type) {
    case 'dir': return S_IFDIR;
    case 'file': return S_IFREG;
    case 'symlink': return S_IFLNK;
    case 'chardev': return S_IFCHR;
  }
}

function checkEntry(entry: CpioEntry): void {
  const { name } = entry;
  if (typeof name !== 'string' || name === '') throw invalid(String(name), 'empty name');
  if (name.startsWith('/')) throw invalid(name, 'names must be relative (no leading "/")');
  if (name.includes('\0')) throw invalid(name, 'name contains NUL');
  if (name === TRAILER_NAME) throw invalid(name, 'reserved name');
  for (const part of name.split('/')) {
    if (part === '' || part === '.' || part === '..') throw invalid(name, 'empty, "." or ".." path component');
  }
  if (!['dir', 'file', 'symlink', 'chardev'].includes(entry.type)) throw invalid(name, `unknown type ${String(entry.type)}`);
  if (entry.type !== 'symlink' && entry.mode !== undefined) {
    if (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777) throw invalid(name, `mode ${entry.mode} is not within 0..0o7777`);
  }
  if (entry.type === 'file' && entry.data.byteLength > MAX_U32) throw invalid(name, 'file larger than 4 GiB - 1 (newc size field)');
  if (entry.type === 'symlink' && (entry.target === '' || entry.target.includes('\0'))) throw invalid(name, 'symlink target empty or contains NUL');
  if (entry.type === 'chardev') {
    for (const n of [entry.major, entry.minor]) {
      if (!Number.isInteger(n) || n < 0 || n > MAX_U32) throw invalid(name, `device number ${n} out of range`);
    }
  }
}

function invalid(name: string, why: string): GuestError {
  return new GuestError('CPIO_INVALID', `cpio entry "${name}": ${why}`);
}
