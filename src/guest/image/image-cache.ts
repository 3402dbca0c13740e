// Built images in the cache: <cache>/images/<digest>.erofs with <digest>.json beside it (config,
// source, format version). The .erofs is renamed into place complete and fsynced, then the .json
// is written atomically: a .json therefore vouches for a complete .erofs, and a lookup trusts
// nothing without it. Two processes building the same digest write identical bytes; the last
// rename wins, and a pod that already opened the older file keeps its inode.
import { open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run, CommandFailed } from '../apt.js';
import { writeFileAtomic } from '../cache.js';
import { VcError } from '../../errors.js';
import { GuestError } from '../errors.js';
import { syncDirectory } from '../../store/atomic.js';
import type { ImageConfig, ImageSource, PreparedImage } from './types.js';

/** Bump when the erofs built from the same tree changes (mkfs options, tree conventions). */
export const IMAGE_FORMAT_VERSION = 1;

export interface ImageRecord {
  formatVersion: number;
  digest: string;
  config: ImageConfig;
  sizeBytes: number;
  /** Where it was first built from (the same digest may come from several sources). */
  source: ImageSource;
  /** "kept" when owners come from the image, "all-root" when built without privileges. */
  ownership: 'kept' | 'all-root';
}

export function imagePaths(imagesDir: string, digest: string): { disk: string; record: string } {
  return { disk: join(imagesDir, `${digest}.erofs`), record: join(imagesDir, `${digest}.json`) };
}

/** The cached image for `digest`, or undefined when absent, partial or from another format. */
export async function lookupImage(imagesDir: string, digest: string): Promise<PreparedImage | undefined> {
  const paths = imagePaths(imagesDir, digest);
  try {
    const record = JSON.parse(await readFile(paths.record, 'utf8')) as Partial<ImageRecord>;
    if (record.formatVersion !== IMAGE_FORMAT_VERSION || record.digest !== digest || !record.config) return undefined;
    const st = await stat(paths.disk);
    if (!st.isFile() || st.size !== record.sizeBytes) return undefined;
    // The record's mtime is the image's last use: gc removes images unused for a while.
    const now = new Date();
    await utimes(paths.record, now, now).catch(() => {});
    return { digest, diskPath: paths.disk, config: record.config, sizeBytes: st.size };
  } catch {
    return undefined; // missing or unreadable: rebuild
  }
}

/** A stable filesystem UUID per image, so the same tree gives the same bytes. */
export function uuidFor(digest: string): string {
  const h = digest.slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * mkfs.erofs, uncompressed, deterministic: -T0 fixes every timestamp (erofs-utils 1.5 cannot keep
 * per-file mtimes and a fixed build time at once), -U a UUID from the digest, -x-1 leaves out
 * xattrs (we do not extract them; the host's must not leak in). Owners are kept unless allRoot.
 */
export async function buildErofs(tree: string, out: string, digest: string, allRoot: boolean, signal?: AbortSignal): Promise<void> {
  const args = ['--quiet', '-T0', '-U', uuidFor(digest), '-x-1', ...(allRoot ? ['--all-root'] : []), out, tree];
  try {
    await run('mkfs.erofs', args, { signal });
  } catch (err) {
    if (!(err instanceof CommandFailed)) throw err;
    if (err.aborted) throw new VcError('ABORTED', 'image: mkfs.erofs was aborted', { cause: err });
    const advice = err.missing ? ' (install erofs-utils)' : '';
    throw new GuestError('IMAGE_BUILD_FAILED', `image: ${err.message}${advice}`, { cause: err });
  }
}

/** Moves a built `temp` erofs into the cache and records it; returns the prepared image. */
export async function publishImage(imagesDir: string, temp: string, record: Omit<ImageRecord, 'formatVersion' | 'sizeBytes'>): Promise<PreparedImage> {
  const paths = imagePaths(imagesDir, record.digest);
  try {
    const handle = await open(temp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, paths.disk);
    await syncDirectory(imagesDir);
  } catch (err) {
    await rm(temp, { force: true });
    throw new GuestError('CACHE_WRITE_FAILED', `cannot write ${paths.disk}: ${(err as Error).message}`, { cause: err });
  }
  const sizeBytes = (await stat(paths.disk)).size;
  const full: ImageRecord = { formatVersion: IMAGE_FORMAT_VERSION, sizeBytes, ...record };
  await writeFileAtomic(paths.record, Buffer.from(`${JSON.stringify(full, null, 2)}\n`));
  return { digest: record.digest, diskPath: paths.disk, config: record.config, sizeBytes };
}

/** A source as recorded: paths made absolute. */
export function describeSource(source: ImageSource): ImageSource {
  return 'path' in source ? { ...source, path: resolve(source.path) } : source;
}

export interface CachedImage {
  digest: string;
  disk: string;
  record: string;
  sizeBytes: number;
  /** When a lookup last found it (or it was built): ms since the epoch. */
  lastUsedMs: number;
}

/** The complete images in the cache (each with its record). */
export async function cachedImages(imagesDir: string): Promise<CachedImage[]> {
  const names = await readdir(imagesDir).catch(() => [] as string[]);
  const images: CachedImage[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const digest = name.slice(0, -'.json'.length);
    const paths = imagePaths(imagesDir, digest);
    const [record, disk] = await Promise.all([stat(paths.record).catch(() => undefined), stat(paths.disk).catch(() => undefined)]);
    if (!record || !disk) continue;
    images.push({ digest, disk: paths.disk, record: paths.record, sizeBytes: disk.size, lastUsedMs: record.mtimeMs });
  }
  return images;
}

/** Removes an image: its record first, so a removal cut short leaves a cache miss, never a bad hit. */
export async function removeImage(image: Pick<CachedImage, 'disk' | 'record'>): Promise<void> {
  await rm(image.record, { force: true });
  await rm(image.disk, { force: true });
}
