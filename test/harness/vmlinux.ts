// An uncompressed vmlinux for L1, unpacked on the host from the Debian bzImage. Under TCG the
// bzImage's own decompressor (xz) takes ≈ 4–5 s of emulated time before the kernel's first line;
// QEMU boots the uncompressed ELF directly through its PVH entry point (the kernel's
// XEN_ELFNOTE_PHYS32_ENTRY note, CONFIG_PVH), which skips that. Cached by the bzImage's sha256.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cacheDir, removeStaleTemps, writeFileAtomic } from '../../src/guest/cache.js';
import { elfSectionData } from '../../src/guest/elf.js';

export type PayloadFormat = 'xz' | 'gzip' | 'zstd' | 'lz4' | 'lzma' | 'bzip2' | 'lzo' | 'unknown';

/**
 * Where a bzImage keeps its compressed kernel (boot protocol ≥ 2.08: payload_offset at 0x248 and
 * payload_length at 0x24c, relative to the protected-mode code, which starts after the
 * (setup_sects + 1) × 512 bytes of real-mode setup) and how it is compressed.
 */
export function bzImagePayload(image: Buffer): { offset: number; length: number; format: PayloadFormat } {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error('not a bzImage (no HdrS setup header)');
  const version = image.readUInt16LE(0x206);
  if (version < 0x208) throw new Error(`boot protocol ${version.toString(16)} has no payload fields (need 2.08)`);
  const setupSects = image[0x1f1] || 4;
  const offset = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (length === 0 || offset + length > image.length) throw new Error(`payload ${offset}+${length} is outside the ${image.length}-byte image`);
  return { offset, length, format: payloadFormat(image.subarray(offset, offset + 6)) };
}

function payloadFormat(head: Buffer): PayloadFormat {
  const hex = head.toString('hex');
  if (hex.startsWith('fd377a585a00')) return 'xz';
  if (hex.startsWith('1f8b')) return 'gzip';
  if (hex.startsWith('28b52ffd')) return 'zstd';
  if (hex.startsWith('02214c18')) return 'lz4';
  if (hex.startsWith('5d00')) return 'lzma';
  if (hex.startsWith('425a68')) return 'bzip2';
  if (hex.startsWith('894c5a')) return 'lzo';
  return 'unknown';
}

/** True when an ELF kernel carries the PVH entry note (Xen note type 18) QEMU needs to boot it. */
export function hasPvhNote(elf: Buffer): boolean {
  const notes = elfSectionData(elf, '.notes', 'vmlinux');
  if (!notes) return false;
  for (let off = 0; off + 12 <= notes.length;) {
    const namesz = notes.readUInt32LE(off);
    const descsz = notes.readUInt32LE(off + 4);
    const type = notes.readUInt32LE(off + 8);
    const name = notes.toString('latin1', off + 12, off + 12 + Math.max(0, namesz - 1));
    if (name === 'Xen' && type === 18) return true;
    off += 12 + align4(namesz) + align4(descsz);
  }
  return false;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * The cached uncompressed vmlinux for `bzImagePath`, unpacking it if needed; undefined (and the
 * caller boots the bzImage) when it cannot be had: an unknown compression, no `xz` tool, or a
 * kernel without the PVH note.
 */
export async function vmlinuxFor(bzImagePath: string, opts: { cacheDir?: string; onProgress?: (m: string) => void } = {}): Promise<string | undefined> {
  const image = await readFile(bzImagePath);
  const digest = createHash('sha256').update(image).digest('hex');
  const path = join(opts.cacheDir ?? cacheDir(), 'l1', `vmlinux-${digest}`);
  if (await isFile(path)) return path;
  const started = Date.now();
  let elf: Buffer;
  try {
    const payload = bzImagePayload(image);
    const data = image.subarray(payload.offset, payload.offset + payload.length);
    if (payload.format === 'gzip') elf = gunzipSync(data);
    else if (payload.format === 'xz') elf = await xzDecompress(data);
    else throw new Error(`${payload.format} payloads are not unpacked here`);
    if (!hasPvhNote(elf)) throw new Error('the kernel has no PVH entry note');
  } catch (err) {
    opts.onProgress?.(`l1 kernel: booting the bzImage (no vmlinux: ${(err as Error).message})`);
    return undefined;
  }
  await removeStaleTemps(dirname(path));
  await writeFileAtomic(path, elf, { mode: 0o644 });
  opts.onProgress?.(`l1 kernel: unpacked ${path} (${elf.length} bytes) in ${Date.now() - started} ms`);
  return path;
}

async function xzDecompress(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // --single-stream: the payload may be followed by padding the decoder must not read as a stream.
    const child = execFile('xz', ['-dc', '--single-stream'], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(new Error(`xz -dc failed: ${err.message.split('\n')[0]}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => {}); // xz may exit before reading everything; the callback reports it
    child.stdin?.end(data);
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
