// The files of an image, wherever they are: an OCI layout directory, or members of a tar archive
// (oci-archive, docker-archive) read in place. Callers ask for relative names they computed
// themselves ("index.json", "blobs/sha256/<hex>") or that a manifest gave; every answer names where
// it looked, so errors point at the exact file.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { GuestError } from '../errors.js';
import { indexTar, type TarIndex } from './tar-index.js';

/** Layer blobs are read sequentially and big: 1 MiB reads instead of the default 64 KiB. */
const READ_CHUNK = 1024 * 1024;

export interface ImageFiles {
  /** "<dir>/<name>" or "<archive>:<name>", for messages. */
  describe(name: string): string;
  /** Byte size of the file, or undefined when it does not exist. */
  size(name: string): Promise<number | undefined>;
  /** The whole file; IMAGE_INVALID when missing or larger than maxBytes. */
  read(name: string, maxBytes: number): Promise<Buffer>;
  /** A stream of the file's bytes; IMAGE_INVALID when missing. */
  open(name: string): Promise<Readable>;
}

export function directoryFiles(root: string): ImageFiles {
  const pathOf = (name: string) => {
    // Names come from manifests too (docker-archive): never let one leave the directory.
    const normalized = posix.normalize(name);
    if (normalized.startsWith('/') || normalized === '..' || normalized.startsWith('../')) {
      throw new GuestError('IMAGE_INVALID', `${root}: "${name}" points outside the image directory`);
    }
    return join(root, normalized);
  };
  const files: ImageFiles = {
    describe: (name) => join(root, name),
    size: async (name) => {
      try {
        const st = await stat(pathOf(name));
        return st.isFile() ? st.size : undefined;
      } catch {
        return undefined;
      }
    },
    read: async (name, maxBytes) => {
      const size = await files.size(name);
      if (size === undefined) throw missing(files.describe(name));
      if (size > maxBytes) throw tooLarge(files.describe(name), size, maxBytes);
      const handle = await open(pathOf(name), 'r');
      try {
        // Read at most maxBytes + 1, so a file growing after the stat is still caught.
        const buf = Buffer.alloc(maxBytes + 1 > size ? size + 1 : maxBytes + 1);
        let done = 0;
        for (let n; done < buf.length && (n = (await handle.read(buf, done, buf.length - done, done)).bytesRead) > 0;) done += n;
        if (done > maxBytes) throw tooLarge(files.describe(name), done, maxBytes);
        return buf.subarray(0, done);
      } finally {
        await handle.close();
      }
    },
    open: async (name) => {
      if ((await files.size(name)) === undefined) throw missing(files.describe(name));
      return createReadStream(pathOf(name), { highWaterMark: READ_CHUNK });
    },
  };
  return files;
}

export async function archiveFiles(archive: string): Promise<ImageFiles> {
  const index: TarIndex = await indexTar(archive);
  const member = (name: string) => {
    const m = index.find(name);
    return m?.type === 'file' ? m : undefined;
  };
  const files: ImageFiles = {
    // Names come from the manifest: a 16 MiB one must not make a 16 MiB message.
    describe: (name) => `${archive}:${name.length > 200 ? `${name.slice(0, 200)}…` : name}`,
    size: async (name) => member(name)?.size,
    read: async (name, maxBytes) => {
      const m = member(name);
      if (!m) throw missing(files.describe(name));
      if (m.size > maxBytes) throw tooLarge(files.describe(name), m.size, maxBytes);
      const chunks: Buffer[] = [];
      for await (const chunk of rangeStream(archive, m.offset, m.size)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    open: async (name) => {
      const m = member(name);
      if (!m) throw missing(files.describe(name));
      return rangeStream(archive, m.offset, m.size);
    },
  };
  return files;
}

function rangeStream(path: string, offset: number, size: number): Readable {
  // createReadStream's `end` is inclusive, and cannot express an empty range.
  return size === 0 ? Readable.from([]) : createReadStream(path, { start: offset, end: offset + size - 1, highWaterMark: READ_CHUNK });
}

function missing(where: string): GuestError {
  return new GuestError('IMAGE_INVALID', `${where}: missing (the image refers to it, but it is not there)`);
}

function tooLarge(where: string, size: number, max: number): GuestError {
  return new GuestError('IMAGE_INVALID', `${where}: ${size} bytes, more than the ${max} a metadata file may have`);
}
