// The guest's initramfs: /init = the agent, the kernel modules it loads (listed in load order in
// /etc/vc-modules), a static busybox with its applet links, and a minimal /etc. Written as plain
// (uncompressed) newc: the kernel unpacks it without a decompressor pass, and every kernel accepts
// it (compression support is optional, CONFIG_RD_*; plain cpio is not).
//
// Cached by content: the digest covers every entry (names, modes, bytes), so the agent, module
// files, busybox and this layout (via INITRD_FORMAT_VERSION) all key the cache; the same inputs
// always give the same bytes and the same <cache>/initrd/<digest>.cpio.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { findBusybox, HOST_BUSYBOX_CANDIDATES } from './busybox.js';
import { identities, memoKey, readMemo, writeMemo } from './initrd-memo.js';
import { removeStaleTemps, trustedCacheDir, writeFileAtomic } from './cache.js';
import { cpioChunks, sortEntries, type CpioEntry } from './cpio.js';
import { GuestError } from './errors.js';
import { throwIfAborted } from '../errors.js';
import { GUEST_MODULES, resolveModules } from './modules.js';

/** Bump when the layout changes in a way the entries alone would not show. */
export const INITRD_FORMAT_VERSION = 1;

const BASE_DIRS: ReadonlyArray<[string, number]> = [
  ['dev', 0o755], ['proc', 0o555], ['sys', 0o555], ['run', 0o755], ['tmp', 0o1777], ['etc', 0o755],
  ['root', 0o700], ['bin', 0o755], ['sbin', 0o755], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755],
  ['lib', 0o755], ['lib/modules', 0o755],
];

/**
 * Applets never linked: linuxrc and init are busybox's own init system, and the kernel falls back
 * to /sbin/init if /init fails — better a clear panic than busybox init starting silently.
 */
const SKIPPED_APPLETS = new Set(['linuxrc', 'init', 'sbin/init']);

export interface InitrdInputs {
  agent: Uint8Array;
  release: string;
  /** Module files in load order; relPath is below /lib/modules/<release>. */
  modules: ReadonlyArray<{ relPath: string; data: Uint8Array }>;
  busybox: { data: Uint8Array; applets: readonly string[] };
  hostname?: string;
}

export interface InitrdSpec {
  /** Sorted, validated archive entries. */
  entries: CpioEntry[];
  /** Guest paths of the modules, in load order: the content of /etc/vc-modules. */
  modules: string[];
}

/** The full file list of the initrd, without touching the filesystem. */
export function planInitrd(inputs: InitrdInputs): InitrdSpec {
  if (!/^[\w.+~-]+$/.test(inputs.release) || inputs.release === '.' || inputs.release === '..') {
    throw new GuestError('INVALID_OPTION', `kernel release: "${inputs.release}" is not a usable directory name`);
  }
  const files = new Map<string, CpioEntry>();
  const add = (entry: CpioEntry) => {
    if (files.has(entry.name)) throw new GuestError('CPIO_INVALID', `initrd: two entries for ${entry.name}`);
    files.set(entry.name, entry);
  };
  add({ type: 'file', name: 'init', data: inputs.agent, mode: 0o755 });
  // The kernel opens /dev/console for init's stdin/stdout/stderr before /init runs, and devtmpfs
  // is not mounted yet then: without this node the agent would start with no console.
  add({ type: 'chardev', name: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  const moduleRoot = `lib/modules/${inputs.release}`;
  const modules = inputs.modules.map((m) => {
    add({ type: 'file', name: `${moduleRoot}/${m.relPath}`, data: m.data, mode: 0o644 });
    return `/${moduleRoot}/${m.relPath}`;
  });
  add({ type: 'file', name: 'etc/vc-modules', data: Buffer.from(modules.map((p) => `${p}\n`).join('')), mode: 0o644 });
  add({ type: 'file', name: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n'), mode: 0o644 });
  add({ type: 'file', name: 'etc/group', data: Buffer.from('root:x:0:\n'), mode: 0o644 });
  add({ type: 'file', name: 'etc/hostname', data: Buffer.from(`${inputs.hostname ?? 'vc-guest'}\n`), mode: 0o644 });
  add({ type: 'file', name: 'bin/busybox', data: inputs.busybox.data, mode: 0o755 });
  for (const applet of inputs.busybox.applets) {
    if (SKIPPED_APPLETS.has(applet) || files.has(applet)) continue;
    files.set(applet, { type: 'symlink', name: applet, target: '/bin/busybox' });
  }

  // Directories: the fixed skeleton plus every parent of a file (module subdirs, odd applet dirs).
  const dirs = new Map<string, number>(BASE_DIRS);
  dirs.set(moduleRoot, 0o755);
  for (const name of files.keys()) {
    for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
      if (!dirs.has(name.slice(0, i))) dirs.set(name.slice(0, i), 0o755);
    }
  }
  for (const name of dirs.keys()) {
    const clash = files.get(name);
    if (clash) throw new GuestError('CPIO_INVALID', `initrd: ${name} is needed as a directory but is a ${clash.type}`);
  }
  const entries = sortEntries([...[...dirs].map(([name, mode]): CpioEntry => ({ type: 'dir', name, mode })), ...files.values()]);
  return { entries, modules };
}

/** sha256 over the format version and every entry's metadata and bytes. */
export function initrdDigest(spec: InitrdSpec): string {
  const hash = createHash('sha256');
  hash.update(`virtcontainers-initrd/${INITRD_FORMAT_VERSION}\n`);
  for (const e of spec.entries) {
    const meta = e.type === 'file' ? [e.type, e.name, e.mode, e.data.byteLength]
      : e.type === 'dir' ? [e.type, e.name, e.mode]
      : e.type === 'symlink' ? [e.type, e.name, e.target]
      : [e.type, e.name, e.mode, e.major, e.minor];
    hash.update(`${JSON.stringify(meta)}\n`);
    if (e.type === 'file') hash.update(e.data);
  }
  return hash.digest('hex');
}

export interface BuildInitrdOptions {
  agentPath: string;
  kernel: { modulesDir: string; release: string };
  /** A static busybox; default: findBusybox(). */
  busyboxPath?: string;
  /** Modules wanted beyond GUEST_MODULES (names; '-' and '_' alike). */
  extraModules?: readonly string[];
  cacheDir?: string;
  onProgress?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface BuiltInitrd {
  path: string;
  digest: string;
  /** True when the archive already existed in the cache. */
  cached: boolean;
  /** Guest paths of the modules in load order (as in /etc/vc-modules). */
  modules: string[];
}

export async function buildInitrd(opts: BuildInitrdOptions): Promise<BuiltInitrd> {
  const progress = (msg: string) => opts.onProgress?.(`initrd: ${msg}`);
  const initrdDir = join(await trustedCacheDir(opts.cacheDir), 'initrd');
  const { modulesDir, release } = opts.kernel;
  const wanted = [...GUEST_MODULES, ...(opts.extraModules ?? [])];
  const candidates = opts.busyboxPath === undefined ? HOST_BUSYBOX_CANDIDATES : [];
  const key = memoKey({ agentPath: opts.agentPath, busyboxPath: opts.busyboxPath, candidates, modulesDir, release, wanted });
  const memo = await readMemo(initrdDir, key);
  if (memo && (await exists(join(initrdDir, `${memo.digest}.cpio`)))) {
    progress(`inputs unchanged since ${memo.digest.slice(0, 12)}: cache hit`);
    return { path: join(initrdDir, `${memo.digest}.cpio`), digest: memo.digest, cached: true, modules: memo.modules };
  }
  // Taken before anything is read: an input changed during the build then misses the memo next time.
  const fixedInputs = await identities([opts.agentPath, ...candidates, modulesDir, join(modulesDir, 'modules.builtin'), join(modulesDir, 'updates')]);
  const agent = await readInput('agent', opts.agentPath);
  const plan = await resolveModules(modulesDir, wanted, { release });
  if (plan.builtin.length > 0) progress(`built into the kernel: ${plan.builtin.join(', ')}`);
  throwIfAborted(opts.signal, 'initrd');
  const busybox = await findBusybox({ path: opts.busyboxPath, cacheDir: opts.cacheDir, onProgress: opts.onProgress, signal: opts.signal });
  const readInputs = await identities([busybox.path, ...plan.load.flatMap((m) => [m.path, dirname(m.path)])]);
  const spec = planInitrd({
    agent,
    release,
    modules: await Promise.all(plan.load.map(async (m) => ({ relPath: m.relPath, data: await readFile(m.path) }))),
    busybox: { data: await readFile(busybox.path), applets: busybox.applets },
  });
  const digest = initrdDigest(spec);
  const path = join(initrdDir, `${digest}.cpio`);
  const cached = await exists(path);
  if (cached) {
    progress(`cache hit ${path}`);
  } else {
    throwIfAborted(opts.signal, 'initrd');
    const chunks = cpioChunks(spec.entries);
    await removeStaleTemps(dirname(path));
    await writeFileAtomic(path, chunks, { mode: 0o644 });
    progress(`wrote ${path} (${chunks.reduce((n, c) => n + c.length, 0)} bytes, ${spec.entries.length} entries, ${spec.modules.length} modules)`);
  }
  // Only a saving for the next build: one that cannot be written costs that build its reads.
  await writeMemo(initrdDir, { key, digest, modules: spec.modules, inputs: { ...fixedInputs, ...readInputs } })
    .catch((err: Error) => progress(`memo not written (the next build reads its inputs again): ${err.message}`));
  return { path, digest, cached, modules: spec.modules };
}

async function readInput(option: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code})`;
    throw new GuestError('INVALID_OPTION', `${option}: ${path} ${why}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
