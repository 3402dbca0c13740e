// The two tarballs a user installs, made from this checkout without changing it, and an npm cache
// holding their registry dependencies, so the install in the user's root can run offline.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../src/guest/cache.js';
import { KERNEL_PACKAGE_NAME } from '../../src/guest/kernel-package.js';
import { GUEST_MODULES } from '../../src/guest/modules.js';
import { buildKernelPackage } from '../../scripts/guest-kernel-package.js';
import { prebuildsFromBuild } from '../../scripts/package/prebuilds.js';

export const checkout = fileURLToPath(new URL('../../../', import.meta.url));

export interface Tarball { path: string; size: number; files: number }

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} (in ${cwd}) failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' / ')}`);
  return r.stdout;
}

/** Why this checkout cannot make the main tarball (no native build to take prebuilds from), or null. */
export function checkoutProblem(): string | null {
  for (const f of ['build/Release/vc_addon.node', 'build/Release/vc-vmm', 'build/Release/vc-agent', 'dist/src/index.js']) {
    if (!existsSync(join(checkout, f))) return `${f} is missing in ${checkout} (run npm ci first)`;
  }
  return null;
}

/**
 * `npm pack` of virtcontainers with prebuilds, as `npm run prebuilds && npm pack` would give, but
 * from a staged copy: the files npm would pack from the checkout, plus prebuilds/linux-x64 made
 * from build/Release (stripped, checked, with manifest). The checkout is never written to.
 */
export function packMain(destination: string): Tarball {
  const stage = mkdtempSync(join(tmpdir(), 'vc-stage-'));
  try {
    const [listing] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], checkout)) as Array<{ files: Array<{ path: string }> }>;
    for (const { path } of listing!.files) {
      mkdirSync(dirname(join(stage, path)), { recursive: true });
      copyFileSync(join(checkout, path), join(stage, path)); // keeps the mode (bin/virtc.js is executable)
    }
    prebuildsFromBuild(join(checkout, 'build/Release'), join(stage, 'prebuilds', `${process.platform}-${process.arch}`));
    return pack(stage, destination);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function pack(dir: string, destination: string): Tarball {
  mkdirSync(destination, { recursive: true });
  const [info] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', destination], dir)) as Array<{ filename: string; size: number; entryCount: number }>;
  return { path: join(destination, info!.filename), size: info!.size, files: info!.entryCount };
}

/** The version of the guest kernel package virtcontainers' package.json asks for. */
export function wantedKernelVersion(): string {
  const pkg = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
  return pkg.optionalDependencies[KERNEL_PACKAGE_NAME]!;
}

/**
 * The guest modules (GUEST_MODULES) a packed guest kernel package has neither as a .ko nor built
 * in, from its manifest.json: a package made before a module joined the list lacks it.
 */
export function missingGuestModules(tarball: string): string[] {
  const r = spawnSync('tar', ['-xOzf', tarball, 'package/manifest.json'], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) return [...GUEST_MODULES];
  const manifest = JSON.parse(r.stdout) as { modules?: string[]; builtin?: string[] };
  const name = (m: string) => basename(m).replace(/\.ko$/, '').replace(/-/g, '_');
  const has = new Set([...(manifest.modules ?? []), ...(manifest.builtin ?? [])].map(name));
  return GUEST_MODULES.filter((m) => !has.has(name(m)));
}

/**
 * The guest kernel package's tarball: from `<cache>/user-root/guest-kernel/` when the version
 * package.json asks for is there and has every module of GUEST_MODULES (the build is
 * deterministic: same .deb and module list, same bytes; the version stays while the package is
 * unpublished, so a tarball made before a module joined is rebuilt), else built with
 * scripts/guest-kernel-package.ts from Debian's current cloud kernel (apt-get download).
 */
export async function kernelTarball(log: (msg: string) => void): Promise<Tarball> {
  const dir = join(cacheDir(), 'user-root', 'guest-kernel');
  const cached = join(dir, `virtcontainers-guest-kernel-linux-x64-${wantedKernelVersion()}.tgz`);
  if (existsSync(cached)) {
    const missing = missingGuestModules(cached);
    if (missing.length === 0) return { path: cached, size: statSync(cached).size, files: 0 };
    log(`guest kernel package: the cached ${basename(cached)} lacks ${missing.join(', ')}; rebuilding it`);
  }
  const temp = mkdtempSync(join(tmpdir(), 'vc-gk-'));
  try {
    const built = await buildKernelPackage({ out: join(temp, 'guest-kernel'), packDestination: temp, onProgress: (m) => log(`guest kernel package: ${m}`) });
    mkdirSync(dir, { recursive: true });
    const path = join(dir, built.tarball!.path.split('/').pop()!);
    renameSync(built.tarball!.path, path);
    if (built.version !== wantedKernelVersion()) log(`guest kernel package: built ${built.version}, package.json wants ${wantedKernelVersion()} (Debian moved on; see docs/packaging.md)`);
    return { path, size: built.tarball!.size, files: 0 };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/**
 * An npm cache (`<cache>/user-root/npm-cache`, kept between runs) holding everything
 * `npm install <tarballs>` fetches from the registry: filled by that very install, run here on the
 * host with --ignore-scripts into a throwaway project, so the offline install in the root resolves
 * the same packuments to the same versions. --prefer-offline: once filled, no network is used.
 */
export function npmCacheFor(tarballs: readonly string[]): string {
  const cache = join(cacheDir(), 'user-root', 'npm-cache');
  const project = mkdtempSync(join(tmpdir(), 'vc-npmfill-'));
  try {
    npm(['init', '-y'], project);
    npm(['install', '--cache', cache, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', ...tarballs], project);
    return cache;
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
}
