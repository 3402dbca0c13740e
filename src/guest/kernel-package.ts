// The guest kernel as an npm package (@virtcontainers/guest-kernel-linux-x64, built by
// scripts/guest-kernel-package.ts from Debian's cloud kernel .deb): hosts without apt — Fedora,
// Arch, a container without Debian's archives — get a kernel by `npm install`. This file is the
// runtime side: finding the package beside virtcontainers, checking it against its manifest, and
// the version mapping both sides agree on.
//
// Package layout (every path relative to the package root):
//   package.json, manifest.json, README.md, COPYRIGHT, GPL-2, LGPL-2.1
//   boot/vmlinuz-<release>, boot/config-<release>
//   lib/modules/<release>/modules.builtin and the .ko files the initrd loads, at their usual paths
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GuestError } from './errors.js';

export const KERNEL_PACKAGE_NAME = '@virtcontainers/guest-kernel-linux-x64';
export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export interface KernelPackageManifest {
  format: typeof MANIFEST_FORMAT;
  /** What `uname -r` says in the guest, e.g. 6.1.0-57-cloud-amd64. */
  release: string;
  debian: {
    /** The binary package, e.g. linux-image-6.1.0-57-cloud-amd64, and its version (6.1.192-3). */
    package: string;
    version: string;
    /** The source package the kernel is built from (linux) and its version. */
    source: string;
    sourceVersion: string;
  };
  /** The bzImage, e.g. boot/vmlinuz-<release>. */
  kernel: string;
  /** The modules dir, lib/modules/<release>. */
  modulesDir: string;
  /** Module paths below modulesDir, dependencies first: the order the guest loads them in. */
  modules: string[];
  /** Wanted modules that are built into the kernel image. */
  builtin: string[];
  /** Every file of the package but package.json and the manifest itself, sorted by path. */
  files: Record<string, { size: number; sha256: string }>;
}

/**
 * The package version for a Debian kernel version. npm needs semver, and Debian's `6.1.192-3` read
 * as semver is the *prerelease* "3" of 6.1.192: it would sort below 6.1.192 and no caret range
 * (^6.1.192-3) would ever pick up 6.1.193-1. So the Debian revision goes into the patch number:
 * upstream X.Y.Z with revision N becomes X.Y.(Z*1000 + N), e.g. 6.1.192-3 → 6.1.192003 and
 * 6.1.193-1 → 6.1.193001. That orders exactly as dpkg does for every version of this form (plain
 * numeric revision 0..999). Anything else — an epoch, an upstream X.Y (which dpkg sorts before
 * X.Y.0), a backport's 1~bpo12+1, a security rebuild's 1+deb12u1 — would not map onto that order
 * and is refused rather than given a version that sorts wrongly.
 */
export function kernelPackageVersion(debianVersion: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)-(\d+)$/.exec(debianVersion);
  const bad = (why: string) => new GuestError('INVALID_OPTION', `Debian version: "${debianVersion}" ${why}`);
  if (!m) {
    throw bad('is not of the form X.Y.Z-N (upstream version and a plain numeric revision; epochs, ~ and + suffixes have no semver mapping that keeps dpkg\'s order)');
  }
  const [major, minor, patch, revision] = m.slice(1).map(Number) as [number, number, number, number];
  if (revision > 999) throw bad(`has revision ${revision}; the mapping X.Y.(Z*1000+N) needs N ≤ 999`);
  const packed = patch * 1000 + revision;
  if (![major, minor, packed].every(Number.isSafeInteger)) throw bad('has numbers too large for semver');
  return `${major}.${minor}.${packed}`;
}

/**
 * The installed package's directory, resolved as an import from `from` would be (default: this
 * module, so a package installed beside virtcontainers, or in its own node_modules, is found).
 * undefined when it is not installed.
 */
export function findKernelPackage(from: string = import.meta.url): string | undefined {
  let pkgJson: string;
  try {
    pkgJson = createRequire(from).resolve(`${KERNEL_PACKAGE_NAME}/package.json`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw new GuestError('KERNEL_PACKAGE_INVALID', `${KERNEL_PACKAGE_NAME}: cannot resolve its package.json: ${(err as Error).message}`, { cause: err });
  }
  return dirname(pkgJson);
}

/** Reads and checks <dir>/manifest.json: every field present with the right type, every path safe. */
export async function readKernelManifest(dir: string): Promise<KernelPackageManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw invalid(`${path} ${code === 'ENOENT' ? 'is missing' : `cannot be read (${code})`}`, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(`${path} is not valid JSON (${(err as Error).message}); the package is truncated or corrupt`, err);
  }
  return checkManifest(json, path);
}

/** Validates a parsed manifest; `where` names it in errors. */
export function checkManifest(json: unknown, where: string): KernelPackageManifest {
  const fail = (field: string, value: unknown, why: string) => invalid(`${where}: ${field}: ${JSON.stringify(value)} ${why}`);
  if (!isObject(json)) throw fail('(root)', json, 'is not an object');
  if (json.format !== MANIFEST_FORMAT) throw fail('format', json.format, `is not ${MANIFEST_FORMAT} (a newer package needs a newer virtcontainers)`);
  const str = (obj: Record<string, unknown>, field: string, prefix = ''): string => {
    const v = obj[field];
    if (typeof v !== 'string' || v === '') throw fail(prefix + field, v, 'is not a non-empty string');
    return v;
  };
  const release = str(json, 'release');
  if (!/^[\w.+~-]+$/.test(release) || release === '.' || release === '..') throw fail('release', release, 'is not a kernel release name');
  const debian = json.debian;
  if (!isObject(debian)) throw fail('debian', debian, 'is not an object');
  const files = json.files;
  if (!isObject(files)) throw fail('files', files, 'is not an object');
  for (const [name, entry] of Object.entries(files)) {
    checkRelPath(name, `files[${JSON.stringify(name)}]`, fail);
    if (!isObject(entry) || !Number.isSafeInteger(entry.size) || (entry.size as number) < 0 || typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) {
      throw fail(`files[${JSON.stringify(name)}]`, entry, 'is not {size, sha256}');
    }
  }
  const listed = (field: string, value: string) => {
    if (!Object.hasOwn(files, value)) throw fail(field, value, 'is not listed in files');
  };
  const kernel = checkRelPath(str(json, 'kernel'), 'kernel', fail);
  listed('kernel', kernel);
  const modulesDir = checkRelPath(str(json, 'modulesDir'), 'modulesDir', fail);
  const strings = (field: string): string[] => {
    const v = json[field];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) throw fail(field, v, 'is not a list of names');
    return v as string[];
  };
  const modules = strings('modules');
  modules.forEach((m, i) => listed(`modules[${i}]`, `${modulesDir}/${checkRelPath(m, `modules[${i}]`, fail)}`));
  return {
    format: MANIFEST_FORMAT,
    release,
    debian: { package: str(debian, 'package', 'debian.'), version: str(debian, 'version', 'debian.'), source: str(debian, 'source', 'debian.'), sourceVersion: str(debian, 'sourceVersion', 'debian.') },
    kernel,
    modulesDir,
    modules,
    builtin: strings('builtin'),
    files: files as KernelPackageManifest['files'],
  };
}

/** Stat signatures of packages already hashed by this process: a later check only stats. */
const verified = new Map<string, string>();

/**
 * Checks that every file the manifest lists exists with its size and sha256 (hashing once per
 * process while the files' size, mtime and inode stay the same) and returns the manifest.
 */
export async function verifyKernelPackage(dir: string): Promise<KernelPackageManifest> {
  const manifest = await readKernelManifest(dir);
  const names = Object.keys(manifest.files).sort();
  const signature: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const want = manifest.files[name]!;
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      throw invalid(`${path} is missing (listed in ${MANIFEST_FILE}); the package is incomplete`, err);
    }
    if (!st.isFile()) throw invalid(`${path} is not a regular file`);
    if (st.size !== want.size) throw invalid(`${path} has ${st.size} bytes, ${MANIFEST_FILE} says ${want.size}; the package is truncated or corrupt`);
    signature.push(`${name}:${st.size}:${st.mtimeMs}:${st.ino}`);
  }
  const key = signature.join('\n');
  if (verified.get(dir) === key) return manifest;
  for (const name of names) {
    const path = join(dir, name);
    const got = await sha256File(path);
    if (got !== manifest.files[name]!.sha256) throw invalid(`${path} has sha256 ${got}, ${MANIFEST_FILE} says ${manifest.files[name]!.sha256}; the package is corrupt`);
  }
  verified.set(dir, key);
  return manifest;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A relative path inside the package: no absolute paths, no '..', '.', or empty segments. */
function checkRelPath(value: string, field: string, fail: (field: string, value: unknown, why: string) => Error): string {
  if (value.startsWith('/') || value.split('/').some((s) => s === '' || s === '.' || s === '..')) throw fail(field, value, 'is not a plain relative path');
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(what: string, cause?: unknown): GuestError {
  const advice = `reinstall ${KERNEL_PACKAGE_NAME}, remove it to use Debian's kernel via apt, or pass a kernel and its modules directory (--kernel and --modules)`;
  return new GuestError('KERNEL_PACKAGE_INVALID', `${KERNEL_PACKAGE_NAME}: ${what}. Fix: ${advice}.`, cause === undefined ? undefined : { cause });
}
