// Fetching Debian packages into the cache without installing them: `apt-get download` (works as
// any user, touches nothing outside the current directory) then `dpkg-deb -x` into a temp dir
// that is renamed into place, so a cache directory either is complete or does not exist.
// Commands run through execFile (no shell), so no argument is ever interpreted.
import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, publishDir, removeStaleTemps } from './cache.js';
import { GuestError } from './errors.js';

const execFileAsync = promisify(execFile);

export interface RunOptions { cwd?: string; signal?: AbortSignal }

/** Why a command failed, in a form that lets callers pick their own error code and advice. */
export class CommandFailed extends Error {
  constructor(readonly command: string, readonly missing: boolean, readonly aborted: boolean, message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'CommandFailed';
  }
}

/** Runs `cmd args` and returns stdout; failures carry the command's last stderr lines. */
export async function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, {
      cwd: options.cwd, signal: options.signal, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' }, // stable, parseable English output
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; code?: string | number };
    const line = `${cmd} ${args.join(' ')}`;
    if (e.name === 'AbortError' || options.signal?.aborted) throw new CommandFailed(line, false, true, `${line}: aborted`, { cause: err });
    if (e.code === 'ENOENT') throw new CommandFailed(line, true, false, `${cmd} is not installed (not found in PATH)`, { cause: err });
    const tail = (e.stderr ?? '').trim().split('\n').filter((l) => !l.startsWith('W: ')).slice(-3).join(' / ');
    throw new CommandFailed(line, false, false, `${line} failed${tail ? `: ${tail}` : ` (${e.message})`}`, { cause: err });
  }
}

/**
 * The package a metapackage depends on whose name matches `pattern`, from `apt-cache depends`
 * (e.g. linux-image-cloud-amd64 → linux-image-6.1.0-56-cloud-amd64).
 */
export async function resolveDependency(meta: string, pattern: RegExp, signal?: AbortSignal): Promise<string> {
  const out = await run('apt-cache', ['depends', meta], { signal });
  for (const line of out.split('\n')) {
    const m = /^\s*\|?(?:Pre)?Depends:\s+(\S+)\s*$/.exec(line);
    if (m?.[1] && pattern.test(m[1])) return m[1];
  }
  throw new CommandFailed(`apt-cache depends ${meta}`, false, false, `apt-cache knows no package ${meta} (or it has no dependency matching ${pattern})`, { cause: out });
}

export interface Extracted { dir: string; package: string; version: string; reused: boolean }

/**
 * Downloads `pkg` and unpacks it to `<parent>/<pkg>_<version>`; if that directory already exists
 * (another process got there first), the existing one is used. `validate` checks the unpacked
 * tree before it is published and throws if it is not what the caller expects.
 */
export async function downloadAndExtract(
  pkg: string,
  parent: string,
  options: { signal?: AbortSignal; onProgress?: (msg: string) => void; validate?: (root: string) => Promise<void> } = {},
): Promise<Extracted> {
  await removeStaleTemps(parent);
  const temp = await makeTempDir(parent, pkg);
  try {
    options.onProgress?.(`downloading ${pkg} (apt-get download)`);
    await run('apt-get', ['download', pkg], { cwd: temp, signal: options.signal });
    const deb = (await readdir(temp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new CommandFailed(`apt-get download ${pkg}`, false, false, `apt-get download ${pkg} left no .deb file`, { cause: undefined });
    const fields = await run('dpkg-deb', ['-f', join(temp, deb), 'Package', 'Version'], { signal: options.signal });
    const version = /^Version:\s*(\S+)/m.exec(fields)?.[1];
    const name = /^Package:\s*(\S+)/m.exec(fields)?.[1] ?? pkg;
    if (!version) throw new CommandFailed(`dpkg-deb -f ${deb}`, false, false, `${deb} has no Version field`, { cause: fields });
    options.onProgress?.(`unpacking ${name} ${version} (dpkg-deb -x)`);
    const root = join(temp, 'root');
    await run('dpkg-deb', ['-x', join(temp, deb), root], { signal: options.signal });
    await options.validate?.(root);
    const dir = join(parent, debDirName(name, version));
    const outcome = await publishDir(root, dir);
    return { dir, package: name, version, reused: outcome === 'existing' };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** `<package>_<version>`, with an epoch's ':' written as apt writes it in .deb file names. */
export function debDirName(pkg: string, version: string): string {
  return `${pkg}_${version.replace(/:/g, '%3a')}`;
}

/**
 * Published extractions under `parent` whose package name matches `pkgPattern`, newest version
 * first. Temp dirs (leading '.') are never returned.
 */
export async function listExtracted(parent: string, pkgPattern: RegExp): Promise<{ dir: string; package: string; version: string }[]> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const found = names.flatMap((n) => {
    const sep = n.indexOf('_');
    if (n.startsWith('.') || sep <= 0) return [];
    const pkg = n.slice(0, sep);
    const version = n.slice(sep + 1).replace(/%3a/g, ':');
    return pkgPattern.test(pkg) && version ? [{ dir: join(parent, n), package: pkg, version }] : [];
  });
  return found.sort((a, b) => compareDebVersions(b.version, a.version) || (a.package < b.package ? 1 : -1));
}

/** dpkg's version ordering: epoch, then upstream, then revision, with '~' sorting before anything. */
export function compareDebVersions(a: string, b: string): number {
  const pa = splitVersion(a);
  const pb = splitVersion(b);
  return Math.sign(pa.epoch - pb.epoch) || verrevcmp(pa.upstream, pb.upstream) || verrevcmp(pa.revision, pb.revision);
}

function splitVersion(v: string): { epoch: number; upstream: string; revision: string } {
  const colon = v.indexOf(':');
  const epoch = colon >= 0 ? Number.parseInt(v.slice(0, colon), 10) || 0 : 0;
  const rest = colon >= 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) } : { epoch, upstream: rest, revision: '' };
}

function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit parts, compared with dpkg's character order.
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = i < a.length && !isDigit(a[i]) ? order(a[i]) : 0;
      const bc = j < b.length && !isDigit(b[j]) ? order(b[j]) : 0;
      if (ac !== bc) return Math.sign(ac - bc);
      if (i < a.length && !isDigit(a[i])) i++;
      if (j < b.length && !isDigit(b[j])) j++;
    }
    // Digit parts, compared as numbers.
    let na = '';
    let nb = '';
    while (i < a.length && isDigit(a[i])) na += a[i++];
    while (j < b.length && isDigit(b[j])) nb += b[j++];
    const diff = compareNumeric(na, nb);
    if (diff !== 0) return diff;
  }
  return 0;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function compareNumeric(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return Math.sign(x.length - y.length);
  return x < y ? -1 : x > y ? 1 : 0;
}
