// A static busybox for the guest's shell and tools. The guest has no C library, so a dynamically
// linked busybox (Debian's `busybox` package) would not run there: we take the host's only if it
// is static, else Debian's busybox-static unpacked into the cache (never installed).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandFailed, downloadAndExtract, listExtracted, run } from './apt.js';
import { trustedCacheDir } from './cache.js';
import { isStaticElf } from './elf.js';
import { GuestError } from './errors.js';
import { throwIfAborted, VcError } from '../errors.js';

export const HOST_BUSYBOX_CANDIDATES: readonly string[] = ['/bin/busybox', '/usr/bin/busybox'];
const PACKAGE = 'busybox-static';

export interface Busybox {
  path: string;
  /** Install paths of its applets, relative: "bin/sh", "usr/bin/env", ... */
  applets: string[];
  source: 'given' | 'host' | 'cache' | 'fetched';
}

export interface BusyboxOptions {
  /** Use this file (must be a static ELF); no search, no fetch. */
  path?: string;
  /** Host paths tried in order before the cache and apt (default HOST_BUSYBOX_CANDIDATES). */
  candidates?: readonly string[];
  cacheDir?: string;
  onProgress?: (msg: string) => void;
  signal?: AbortSignal;
}

export async function findBusybox(opts: BusyboxOptions = {}): Promise<Busybox> {
  throwIfAborted(opts.signal, 'busybox');
  if (opts.path !== undefined) {
    if (!(await isFile(opts.path))) throw new GuestError('INVALID_OPTION', `busybox: ${opts.path} does not exist or is not a file`);
    let isStatic: boolean;
    try {
      isStatic = await staticElf(opts.path);
    } catch (err) {
      throw new GuestError('INVALID_OPTION', `busybox: ${opts.path} is not an executable: ${(err as Error).message}`, { cause: err });
    }
    if (!isStatic) throw new GuestError('INVALID_OPTION', `busybox: ${opts.path} is dynamically linked; the guest needs a static busybox`);
    return found(opts.path, 'given', opts);
  }
  for (const candidate of opts.candidates ?? HOST_BUSYBOX_CANDIDATES) {
    // A dynamic or unreadable candidate is not an error: we fall back to busybox-static.
    if ((await isFile(candidate)) && (await staticElf(candidate).catch(() => false))) return found(candidate, 'host', opts);
  }
  const parent = join(await trustedCacheDir(opts.cacheDir), 'busybox');
  for (const entry of await listExtracted(parent, /^busybox-static$/)) {
    const path = await binaryIn(entry.dir);
    if (path) return found(path, 'cache', opts);
  }
  try {
    const got = await downloadAndExtract(PACKAGE, parent, {
      signal: opts.signal,
      onProgress: (msg) => opts.onProgress?.(`busybox: ${msg}`),
      validate: async (root) => {
        const path = await binaryIn(root);
        if (!path || !(await staticElf(path))) throw new GuestError('BUSYBOX_UNAVAILABLE', `${PACKAGE} has no static bin/busybox`);
      },
    });
    return found((await binaryIn(got.dir))!, 'fetched', opts);
  } catch (err) {
    if (!(err instanceof CommandFailed)) throw err;
    if (err.aborted) throw new VcError('ABORTED', 'busybox: fetching was aborted', { cause: err });
    throw new GuestError(
      'BUSYBOX_UNAVAILABLE',
      // Name the package on the distributions users have, not only on Debian: where apt-get is
      // missing, "run apt-get update" is no help.
      `no static busybox at ${(opts.candidates ?? HOST_BUSYBOX_CANDIDATES).join(' or ')}, and fetching Debian's ${PACKAGE} failed: ${err.message}. ` +
        `Install a static busybox: ${PACKAGE} on Debian and Ubuntu (run \`apt-get update\` first if apt does not know it), busybox on Fedora.`,
      { cause: err },
    );
  }
}

/**
 * Applet install paths from `busybox --list-full`, validated so that a strange binary cannot
 * make us write outside the initrd's tree.
 */
export async function listApplets(path: string, signal?: AbortSignal): Promise<string[]> {
  let out: string;
  try {
    out = await run(path, ['--list-full'], { signal });
  } catch (err) {
    throw new GuestError('INVALID_OPTION', `busybox: ${path} --list-full failed: ${(err as Error).message}`, { cause: err });
  }
  const applets = out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  for (const a of applets) {
    if (a.startsWith('/') || a.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new GuestError('INVALID_OPTION', `busybox: ${path} lists an unusable applet path "${a}"`);
    }
  }
  if (applets.length === 0) throw new GuestError('INVALID_OPTION', `busybox: ${path} lists no applets`);
  return [...new Set(applets)].sort();
}

async function found(path: string, source: Busybox['source'], opts: BusyboxOptions): Promise<Busybox> {
  const applets = await listApplets(path, opts.signal);
  opts.onProgress?.(`busybox: using ${path} (${source}, ${applets.length} applets)`);
  return { path, applets, source };
}

async function binaryIn(root: string): Promise<string | undefined> {
  for (const rel of ['bin/busybox', 'usr/bin/busybox']) {
    if (await isFile(join(root, rel))) return join(root, rel);
  }
  return undefined;
}

async function staticElf(path: string): Promise<boolean> {
  return isStaticElf(await readFile(path), path);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
