// Which kernel the guest boots, and its modules. Either the caller names both (any kernel + its
// modules directory), or we use Debian's cloud kernel: first from the npm package
// @virtcontainers/guest-kernel-linux-x64 when it is installed (an optional dependency: works on any
// distribution, offline), else fetched once into the cache with apt and never installed on the
// host. With flavor 'generic' (Debian's generic kernel, which has 9p: the nested-KVM test harness
// boots it as its L1) only apt is used. An existing extraction is reused without running apt at
// all, so the common case is fast and works offline.
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { CommandFailed, downloadAndExtract, listExtracted, resolveDependency } from './apt.js';
import { trustedCacheDir } from './cache.js';
import { GuestError } from './errors.js';
import { throwIfAborted, VcError } from '../errors.js';
import { findKernelPackage, KERNEL_PACKAGE_NAME, verifyKernelPackage } from './kernel-package.js';
import { findModuleFiles } from './modules.js';

export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';
const KERNEL_PACKAGE = /^linux-image-\d.*-cloud-amd64$/;

export type KernelFlavor = 'cloud' | 'generic';

/** Debian's metapackage and the versioned package it depends on, per flavor. */
export const KERNEL_FLAVORS: Readonly<Record<KernelFlavor, { metapackage: string; pattern: RegExp }>> = {
  cloud: { metapackage: KERNEL_METAPACKAGE, pattern: KERNEL_PACKAGE },
  // linux-image-6.1.0-56-amd64: no flavor word between the ABI number and the arch (which also
  // keeps -cloud-amd64 and -rt-amd64 out).
  generic: { metapackage: 'linux-image-amd64', pattern: /^linux-image-\d+\.\d+\.\d+-\d+-amd64$/ },
};

export interface KernelOptions {
  /** A kernel image (bzImage); requires modulesDir too. CLI: --kernel. */
  kernelPath?: string;
  /** Its modules directory, usually /lib/modules/<release>. CLI: --modules. */
  modulesDir?: string;
  /**
   * Which Debian kernel to use when none is given: 'cloud' (default, linux-image-cloud-amd64) or
   * 'generic' (linux-image-amd64). Both live side by side in <cache>/kernels.
   */
  flavor?: KernelFlavor;
  /** Overrides the cache root (default: cacheDir()). */
  cacheDir?: string;
  /**
   * Where the cloud flavor looks for the kernel package: resolved like an import from this file
   * or file: URL (default: this module, i.e. the package installed beside virtcontainers);
   * false: skip the package and use the cache / apt.
   */
  packageFrom?: string | false;
  onProgress?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface Kernel { kernelPath: string; modulesDir: string; release: string }

export async function resolveKernel(opts: KernelOptions = {}): Promise<Kernel> {
  throwIfAborted(opts.signal, 'kernel');
  if (opts.kernelPath !== undefined || opts.modulesDir !== undefined) return userKernel(opts);
  const name = opts.flavor ?? 'cloud';
  const flavor = Object.hasOwn(KERNEL_FLAVORS, name) ? KERNEL_FLAVORS[name] : undefined;
  if (!flavor) throw invalid('flavor', String(opts.flavor), "is not 'cloud' or 'generic'");
  if (name === 'cloud' && opts.packageFrom !== false) {
    const dir = findKernelPackage(opts.packageFrom);
    if (dir !== undefined) return packagedKernel(dir, opts);
  }
  const kernels = join(await trustedCacheDir(opts.cacheDir), 'kernels');
  const cached = await newestExtracted(kernels, flavor.pattern);
  if (cached) {
    opts.onProgress?.(`kernel: using cached ${basename(cached.dir)} (from apt)`);
    return cached.kernel;
  }
  return fetchKernel(kernels, flavor, opts);
}

/**
 * The kernel release from a bzImage's setup header: "HdrS" at 0x202, and at 0x20e a pointer
 * (relative to 0x200) to a string like "6.1.0-56-cloud-amd64 (debian-kernel@...) #1 SMP ...".
 * undefined when the file is not a bzImage or has no version string.
 */
export function bzImageRelease(image: Buffer): string | undefined {
  if (image.length < 0x210 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const ptr = image.readUInt16LE(0x20e);
  if (ptr === 0) return undefined;
  const start = ptr + 0x200;
  const end = image.indexOf(0, start);
  if (start >= image.length || end < 0 || end - start > 512) return undefined;
  const release = image.toString('latin1', start, end).split(' ')[0];
  return release && /^[\w.+~-]+$/.test(release) ? release : undefined;
}

async function userKernel(opts: KernelOptions): Promise<Kernel> {
  if (opts.kernelPath === undefined) throw invalid('kernel', undefined, `is required when modules (${opts.modulesDir}) is given`);
  if (opts.modulesDir === undefined) throw invalid('modules', undefined, `is required when kernel (${opts.kernelPath}) is given`);
  const kernelPath = resolve(opts.kernelPath);
  const modulesDir = resolve(opts.modulesDir);
  const k = await statOrUndefined(kernelPath);
  if (!k) throw invalid('kernel', opts.kernelPath, 'does not exist');
  if (!k.isFile()) throw invalid('kernel', opts.kernelPath, 'is not a regular file');
  const m = await statOrUndefined(modulesDir);
  if (!m) throw invalid('modules', opts.modulesDir, 'does not exist');
  if (!m.isDirectory()) throw invalid('modules', opts.modulesDir, 'is not a directory');
  if ((await findModuleFiles(modulesDir)).length === 0) throw invalid('modules', opts.modulesDir, 'contains no .ko files');
  // The header's release is what `uname -r` will say in the guest; a modules dir is usually named
  // after it too, which is the fallback for images without a version string.
  const release = bzImageRelease(await readHead(kernelPath, 64 * 1024)) ?? basename(modulesDir);
  return { kernelPath, modulesDir, release };
}

async function packagedKernel(dir: string, opts: KernelOptions): Promise<Kernel> {
  const started = Date.now();
  const manifest = await verifyKernelPackage(dir);
  opts.onProgress?.(`kernel: using ${manifest.release} (Debian ${manifest.debian.version}) from the package ${KERNEL_PACKAGE_NAME} in ${dir}, verified in ${Date.now() - started} ms`);
  return { kernelPath: join(dir, manifest.kernel), modulesDir: join(dir, manifest.modulesDir), release: manifest.release };
}

async function fetchKernel(kernels: string, flavor: { metapackage: string; pattern: RegExp }, opts: KernelOptions): Promise<Kernel> {
  try {
    opts.onProgress?.(`kernel: looking up ${flavor.metapackage} (apt-cache depends)`);
    const pkg = await resolveDependency(flavor.metapackage, flavor.pattern, opts.signal);
    const started = Date.now();
    const got = await downloadAndExtract(pkg, kernels, {
      signal: opts.signal,
      onProgress: (msg) => opts.onProgress?.(`kernel: ${msg}`),
      validate: async (root) => { await kernelLayout(root); },
    });
    opts.onProgress?.(`kernel: ${got.reused ? 'another process unpacked' : 'unpacked'} ${basename(got.dir)} in ${Date.now() - started} ms`);
    return await kernelLayout(got.dir);
  } catch (err) {
    if (err instanceof CommandFailed) {
      if (err.aborted) throw new VcError('ABORTED', 'kernel: fetching was aborted', { cause: err });
      throw new GuestError(
        'KERNEL_UNAVAILABLE',
        `cannot fetch Debian's ${flavor.metapackage}: ${err.message}. Run \`apt-get update\` (and make sure apt-get works), ` +
          'or pass a kernel and its modules directory (kernelPath + modulesDir; CLI: --kernel and --modules).',
        { cause: err },
      );
    }
    throw err;
  }
}

/** The newest complete extraction in the cache, if any. */
async function newestExtracted(kernels: string, pattern: RegExp): Promise<{ dir: string; kernel: Kernel } | undefined> {
  for (const entry of await listExtracted(kernels, pattern)) {
    try {
      return { dir: entry.dir, kernel: await kernelLayout(entry.dir) };
    } catch {
      // Not a kernel tree (someone put something else there): look at the next one.
    }
  }
  return undefined;
}

/** Finds boot/vmlinuz-<release> and (usr/)lib/modules/<release> in an unpacked kernel package. */
export async function kernelLayout(root: string): Promise<Kernel> {
  for (const libDir of ['lib/modules', 'usr/lib/modules']) {
    let releases: string[];
    try {
      releases = (await readdir(join(root, libDir))).sort();
    } catch {
      continue;
    }
    for (const release of releases) {
      const kernelPath = join(root, 'boot', `vmlinuz-${release}`);
      if ((await statOrUndefined(kernelPath))?.isFile()) return { kernelPath, modulesDir: join(root, libDir, release), release };
    }
  }
  throw new GuestError('KERNEL_UNAVAILABLE', `${root} has no boot/vmlinuz-<release> with a matching lib/modules/<release>`);
}

async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

function invalid(option: string, value: string | undefined, why: string): GuestError {
  return new GuestError('INVALID_OPTION', value === undefined ? `${option}: ${why}` : `${option}: ${value} ${why}`);
}
