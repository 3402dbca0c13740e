// Where fetched kernels, busybox and built initrds live, and how files and directories get there
// without anyone ever seeing them half-written (a crash or a full disk leaves the old state).
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { syncDirectory, writeFileAtomic as writeAtomic } from '../store/atomic.js';
import { untrustedDir } from '../store/ownership.js';
import { GuestError } from './errors.js';

/**
 * `VC_CACHE_DIR`, else `$XDG_CACHE_HOME/virtcontainers`, else `~/.cache/virtcontainers`.
 * A relative XDG_CACHE_HOME is ignored, as the XDG base-dir spec requires.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VC_CACHE_DIR) return env.VC_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'virtcontainers');
  return join(homedir(), '.cache', 'virtcontainers');
}

/**
 * The cache root (`dir`, default cacheDir()), made 0700 if missing, once it is known to be ours:
 * CACHE_UNSAFE when another user owns it or a group or everyone may write it, since what is in it
 * (kernels, initrds, image disks) is booted and mounted as is. Checked after mkdir, so a directory
 * someone else made first in a shared parent is refused, not used.
 */
export async function trustedCacheDir(dir = cacheDir()): Promise<string> {
  let made: Error | undefined;
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: Error) => { made = err; });
  const reason = await untrustedDir(dir);
  if (reason) throw new GuestError('CACHE_UNSAFE', `cache directory refused: ${reason}`);
  if (made) throw new GuestError('CACHE_WRITE_FAILED', `cannot create the cache directory ${dir}: ${made.message}`, { cause: made });
  return dir;
}

/** The store's atomic write, with failures reported as a cache error naming the file. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | readonly Uint8Array[],
  options: { mode?: number } = {},
): Promise<void> {
  try {
    await writeAtomic(path, data, options);
  } catch (err) {
    throw new GuestError('CACHE_WRITE_FAILED', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** A fresh private directory under `parent` (created if needed), named so scans can ignore it. */
export async function makeTempDir(parent: string, label: string): Promise<string> {
  await mkdir(parent, { recursive: true });
  return mkdtemp(join(parent, `.tmp-${label}-`));
}

/**
 * Moves a fully prepared `tempDir` to `finalDir` in one rename. If another process published the
 * same directory first, ours is discarded and theirs is kept (same content by construction).
 */
export async function publishDir(tempDir: string, finalDir: string): Promise<'created' | 'existing'> {
  try {
    await rename(tempDir, finalDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
      throw new GuestError('CACHE_WRITE_FAILED', `cannot create ${finalDir}: ${(err as Error).message}`, { cause: err });
    }
    await rm(tempDir, { recursive: true, force: true });
    return 'existing';
  }
  await syncDirectory(dirname(finalDir));
  return 'created';
}

/**
 * Removes temp files and dirs (ours: ".tmp-*" dirs, ".*.tmp" files) older than `maxAgeMs` from
 * `dir`: what a process killed mid-download or mid-write left behind. Younger ones may belong to
 * a process still at work and are kept. Best effort: failures are ignored.
 */
export async function removeStaleTemps(dir: string, maxAgeMs = 60 * 60 * 1000): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith('.') || !(name.startsWith('.tmp-') || name.endsWith('.tmp'))) continue;
    const path = join(dir, name);
    try {
      if (Date.now() - (await stat(path)).mtimeMs < maxAgeMs) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Gone already (another process cleaned up) or not ours to remove: leave it.
    }
  }
  return removed;
}
