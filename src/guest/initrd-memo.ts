// What an initrd build read, by stat, so that the next build from the same inputs skips reading
// them: the module tree's walk, the modules' .modinfo, `busybox --list-full`, and hashing the agent,
// busybox and the modules for the digest — ≈ 0.25 s of every createPod at L0, seconds in the nested
// harness's L1. A memo (`<cache>/initrd/memo/<sha256 of the options>.json`) names the digest and
// every input's identity (device, inode, size, mtime in ns, or its absence); it is used only when
// each still matches and the archive it names exists, else the build runs as before and writes a
// new memo. The inputs include the compiled code that lays the archive out (this file's siblings),
// so an upgrade of the package rebuilds. What it does not notice: a module file added to the tree
// under the name of one already resolved, in a directory none of them is in (a kernel's tree has
// one file per module name; a changed directory of a resolved module, or a new `updates/`, is
// noticed).
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeStaleTemps, writeFileAtomic } from './cache.js';

const MEMO_VERSION = 1;

/** The compiled modules whose code decides an archive's content. */
const CODE_FILES = ['initrd.js', 'modules.js', 'busybox.js', 'cpio.js'].map((f) => join(dirname(fileURLToPath(import.meta.url)), f));

export interface InitrdMemo {
  version: number;
  key: string;
  digest: string;
  /** BuiltInitrd.modules: guest paths in load order. */
  modules: string[];
  /** Each input path with its identity ('' when it did not exist). */
  inputs: Record<string, string>;
}

/** The options of a build, as the memo's key (and file name, hashed). */
export function memoKey(options: { agentPath: string; busyboxPath?: string; candidates: readonly string[]; modulesDir: string; release: string; wanted: readonly string[] }): string {
  return JSON.stringify([MEMO_VERSION, options.agentPath, options.busyboxPath ?? null, options.candidates, options.modulesDir, options.release, options.wanted]);
}

/** dev:ino:size:mtimeNs of `path` (following links), or '' when it does not exist. */
async function identity(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch {
    return '';
  }
}

export async function identities(paths: readonly string[]): Promise<Record<string, string>> {
  const all = [...new Set([...paths, ...CODE_FILES])];
  const ids = await Promise.all(all.map(identity));
  return Object.fromEntries(all.map((p, i) => [p, ids[i]!]));
}

function memoPath(initrdDir: string, key: string): string {
  return join(initrdDir, 'memo', `${createHash('sha256').update(key).digest('hex')}.json`);
}

/** The memo for `key` when every input it names is unchanged, else undefined. */
export async function readMemo(initrdDir: string, key: string): Promise<InitrdMemo | undefined> {
  let memo: InitrdMemo;
  try {
    memo = JSON.parse(await readFile(memoPath(initrdDir, key), 'utf8')) as InitrdMemo;
  } catch {
    return undefined; // none yet, or unreadable: the build runs and writes a new one
  }
  if (memo.version !== MEMO_VERSION || memo.key !== key || typeof memo.digest !== 'string' || !Array.isArray(memo.modules) || typeof memo.inputs !== 'object' || memo.inputs === null) return undefined;
  const paths = Object.keys(memo.inputs);
  if (!CODE_FILES.every((f) => paths.includes(f))) return undefined;
  const now = await identities(paths);
  return paths.every((p) => now[p] === memo.inputs[p]) ? memo : undefined;
}

/** Writes the memo whole (a crash leaves the old one or none). */
export async function writeMemo(initrdDir: string, memo: Omit<InitrdMemo, 'version'>): Promise<void> {
  const full: InitrdMemo = { version: MEMO_VERSION, ...memo };
  const path = memoPath(initrdDir, memo.key);
  await removeStaleTemps(dirname(path)); // a writer that died between its temp file and the rename
  await writeFileAtomic(path, Buffer.from(`${JSON.stringify(full)}\n`), { mode: 0o644 });
}
