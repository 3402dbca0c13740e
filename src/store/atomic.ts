// Writes that are never seen half-done: a temp file in the same directory (same filesystem, so the
// rename is atomic), fsync, rename, and an fsync of the directory so the rename survives a crash.
// On failure the temp file is removed and `path` keeps its old content (or stays absent).
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  options: { mode?: number; /** false: a missing directory is an error (ENOENT), not made. */ createDir?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const chunks = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
  try {
    if (options.createDir !== false) await mkdir(dir, { recursive: true });
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      // Chunk by chunk, so a large file never needs one contiguous copy; write() may be short.
      for (const chunk of chunks) {
        for (let done = 0; done < chunk.byteLength;) {
          done += (await handle.write(chunk, done, chunk.byteLength - done)).bytesWritten;
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dir);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
