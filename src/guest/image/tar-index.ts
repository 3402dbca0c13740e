// Random access to the members of an outer archive (docker-archive, oci-archive). Only headers are
// read, seeking over member data, so finding manifest.json or index.json in a multi-GB archive
// costs a few reads, and a blob is later streamed straight from its byte range: a cache hit never
// reads layer data, and nothing is unpacked to disk. (tar-stream, used for layers, can only read
// sequentially.) Understands ustar, GNU long names and pax path/linkpath/size records.
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { GuestError } from '../errors.js';

export interface TarMember {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'link' | 'other';
  /** Byte offset of the member's data in the archive. */
  offset: number;
  size: number;
  linkname: string;
}

/** Long-name and pax records are small; a huge one is a broken or hostile archive. */
const MAX_META_BYTES = 1024 * 1024;
const MAX_LINK_HOPS = 16;
/** An image archive holds a few members per layer; millions of empty headers would be a slow way to say nothing. */
const MAX_HEADERS = 100_000;
/** The index keeps every member's name and link target: a bound on their sum bounds its memory (real ones are a few MB at most). */
const MAX_NAME_BYTES = 32 * 1024 * 1024;
/** Entry types that have no data, by type flag. */
const HEADER_ONLY: Record<string, string> = { 1: 'hardlink', 2: 'symlink', 3: 'character device', 4: 'block device', 5: 'directory', 6: 'fifo' };

export class TarIndex {
  constructor(readonly path: string, private readonly members: ReadonlyMap<string, TarMember>) {}

  names(): string[] {
    return [...this.members.keys()];
  }

  /** The member called `name` (links followed inside the archive), or undefined. */
  find(name: string): TarMember | undefined {
    let member = this.members.get(memberKey(name, this.path, 'the name'));
    for (let hops = 0; member && (member.type === 'symlink' || member.type === 'link'); hops++) {
      if (hops >= MAX_LINK_HOPS) throw new GuestError('IMAGE_INVALID', `${this.path}: too many links resolving ${shown(name)}`);
      const outside = () => new GuestError('IMAGE_UNSAFE', `${this.path}: ${shown(member!.name)} links to ${shown(member!.linkname)}, outside the archive`);
      let target = member.linkname;
      if (member.type === 'symlink') {
        // A symlink's target is a path on whatever disk the archive is unpacked to, not a member name.
        if (target.startsWith('/')) throw outside();
        target = posix.normalize(posix.join(posix.dirname(member.name), target));
        if (target === '..' || target.startsWith('../')) throw outside();
      } else if (target.split('/').includes('..')) {
        throw outside();
      }
      member = this.members.get(memberKey(target, this.path, `the link target of ${shown(member.name)}`));
    }
    return member;
  }
}

/**
 * The key a member is stored and looked up by: "./a//b/" and "a/b" name the same member, a leading
 * "/" is dropped (as GNU tar does). A ".." component or a NUL byte is refused: no writer puts one
 * in an image archive, and a manifest naming one is pointing outside it.
 */
export function memberKey(name: string, archive: string, what: string): string {
  if (name.includes('\0')) throw new GuestError('IMAGE_INVALID', `${archive}: ${what} ${shown(name)} contains a NUL byte`);
  if (name.split('/').includes('..')) throw new GuestError('IMAGE_UNSAFE', `${archive}: ${what} ${shown(name)} contains "..", outside the archive`);
  return posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
}

/** A name for a message: quoted, and cut short (a pax path may be a megabyte). */
export function shown(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

/** The bounds are lowered by tests only. */
export async function indexTar(path: string, { maxHeaders = MAX_HEADERS, maxNameBytes = MAX_NAME_BYTES } = {}): Promise<TarIndex> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GuestError(code === 'ENOENT' ? 'IMAGE_NOT_FOUND' : 'IMAGE_INVALID', `${path}: cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    const fileSize = (await handle.stat()).size;
    const members = new Map<string, TarMember>();
    const reader = new ReadWindow(handle, fileSize, path);
    let pos = 0;
    let headers = 0;
    let nameBytes = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Map<string, string> | undefined;
    while (pos + 512 <= fileSize) {
      let header = await reader.bytes(pos, 512);
      if (header.every((b) => b === 0)) {
        // End of archive. Go's archive/tar (docker load) refuses a zero block followed by a
        // header, so members hidden after one would be seen by one reader and not the other.
        if (pos + 1024 <= fileSize) {
          header = await reader.bytes(pos + 512, 512);
          if (!header.every((b) => b === 0)) throw invalid(path, `a lone zero block at offset ${pos}, followed by more headers`);
        }
        return new TarIndex(path, members);
      }
      if (++headers > maxHeaders) throw invalid(path, `more than ${maxHeaders} headers`);
      checkHeader(header, pos, path);
      const type = String.fromCharCode(header[156]!);
      let size = parseNumber(header.subarray(124, 136), 'size', pos, path);
      if (type !== 'x' && type !== 'g' && pax?.has('size')) size = Number(pax.get('size'));
      if (!Number.isSafeInteger(size) || size < 0) throw invalid(path, `bad size at offset ${pos}`);
      const offset = pos + 512;
      if (offset + size > fileSize) {
        throw invalid(path, `truncated: the member at offset ${pos} needs ${size} bytes, the file ends ${fileSize - offset} bytes after its header`);
      }
      pos = offset + Math.ceil(size / 512) * 512;
      if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
        if (size > MAX_META_BYTES) throw invalid(path, `a ${size}-byte extended header at offset ${offset - 512}`);
        const data = await reader.bytes(offset, size);
        if (type === 'L') longName = cString(data);
        else if (type === 'K') longLink = cString(data);
        else if (type === 'x') pax = parsePax(data, offset, path);
        // 'g' (global pax) carries defaults such as mtime that do not matter for finding blobs.
        continue;
      }
      const rawName = pax?.get('path') ?? longName ?? headerName(header);
      const linkname = pax?.get('linkpath') ?? longLink ?? cString(header.subarray(157, 257));
      longName = longLink = pax = undefined;
      const name = memberKey(rawName, path, 'member');
      nameBytes += name.length + linkname.length;
      if (nameBytes > maxNameBytes) throw invalid(path, `member names and link targets longer than ${maxNameBytes} characters in all`);
      const memberType = typeOf(type, rawName);
      // Go's archive/tar (docker load) reads no data for these (nor for an old-style NUL-typed
      // name ending in "/") and takes the bytes for the next header; skipping them, as we would,
      // shows the two readers different members.
      const headerOnly = HEADER_ONLY[type] ?? (type === '\0' && rawName.endsWith('/') ? 'directory' : undefined);
      if (headerOnly !== undefined && size > 0) {
        throw invalid(path, `member ${shown(name)} at offset ${offset - 512} is a ${headerOnly} with ${size} bytes of data`);
      }
      members.set(name, { name, type: memberType, offset, size, linkname });
    }
    // No end-of-archive blocks: tolerated when the last member is complete, as GNU tar does.
    if (pos !== fileSize && pos + 512 > fileSize) throw invalid(path, `truncated: ${fileSize - pos} stray bytes after the last member`);
    return new TarIndex(path, members);
  } finally {
    await handle.close();
  }
}

function invalid(path: string, what: string): GuestError {
  return new GuestError('IMAGE_INVALID', `${path}: not a valid tar archive: ${what}`);
}

/** Small members' headers come from one 64 KiB read rather than a read each. */
const WINDOW_BYTES = 64 * 1024;

class ReadWindow {
  private readonly buf = Buffer.alloc(WINDOW_BYTES);
  private start = 0;
  private length = 0;

  constructor(private readonly handle: FileHandle, private readonly fileSize: number, private readonly path: string) {}

  /** `size` bytes at `pos`, inside the file; a view the next call may overwrite. */
  async bytes(pos: number, size: number): Promise<Buffer> {
    if (pos < this.start || pos + size > this.start + this.length) {
      if (size > WINDOW_BYTES) {
        const out = Buffer.alloc(size);
        await readExactly(this.handle, out, pos, this.path);
        return out;
      }
      this.start = pos;
      this.length = Math.min(WINDOW_BYTES, this.fileSize - pos);
      await readExactly(this.handle, this.buf.subarray(0, this.length), pos, this.path);
    }
    return this.buf.subarray(pos - this.start, pos - this.start + size);
  }
}

async function readExactly(handle: FileHandle, buf: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw invalid(path, `unexpected end of file at offset ${position + done}`);
    done += bytesRead;
  }
}

function checkHeader(header: Buffer, pos: number, path: string): void {
  // The checksum counts the checksum field itself as eight spaces.
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += header[i]!;
  const stored = parseNumber(header.subarray(148, 156), 'checksum', pos, path);
  if (stored !== sum) throw invalid(path, `bad header checksum at offset ${pos}`);
}

/** Octal, NUL/space terminated; or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Buffer, what: string, pos: number, path: string): number {
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    if (!Number.isSafeInteger(value)) throw invalid(path, `${what} out of range at offset ${pos}`);
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw invalid(path, `bad ${what} field ${shown(text)} at offset ${pos}`);
  return parseInt(text, 8);
}

function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const ustar = header.subarray(257, 262).toString('latin1') === 'ustar';
  const prefix = ustar ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}

function typeOf(flag: string, name: string): TarMember['type'] {
  switch (flag) {
    case '0': case '\0': case '7': return name.endsWith('/') ? 'dir' : 'file';
    case '1': return 'link';
    case '2': return 'symlink';
    case '5': return 'dir';
    default: return 'other';
  }
}

/** Records are "<length> <key>=<value>\n", the length counting the whole record. */
function parsePax(data: Buffer, offset: number, path: string): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length && data[pos] !== 0) {
    const space = data.indexOf(0x20, pos);
    const len = space > pos ? Number(data.subarray(pos, space).toString('latin1')) : NaN;
    if (!Number.isSafeInteger(len) || len <= space - pos || pos + len > data.length) {
      throw invalid(path, `bad pax record in the extended header at offset ${offset - 512}`);
    }
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  if (out.has('size') && !/^\d+$/.test(out.get('size')!)) throw invalid(path, `bad pax size in the extended header at offset ${offset - 512}`);
  return out;
}
