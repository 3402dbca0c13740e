// A container's `mounts`: host files and directories shown in the guest without a shared
// filesystem. At create the host walks each source (planMounts), the agent stages one bind per
// mount (bindsOf, create_container's `binds`) and the host copies the content in with put_file
// (copyMountsIn) before the container is recorded as created (docs/agent-protocol.md, "Binds").
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { constants, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { AgentClient } from '../agent/index.js';
import { MAX_PAYLOAD_SIZE } from '../agent/protocol.js';
import { VcError } from '../errors.js';
import type { HostMount } from '../model/container-config.js';

/** The most bytes of file content that the mounts of one container may copy into the guest. */
export const MOUNT_BYTES_LIMIT = 64 * 1024 * 1024;

/**
 * File bytes per put_file request: base64 makes 4/3 of them, and the path (at most 4096 bytes,
 * 6 per byte when JSON escapes it) and the other arguments need < 32 KiB more, well inside the
 * agent's frame payload limit.
 */
export const PUT_CHUNK_BYTES = Math.floor(((MAX_PAYLOAD_SIZE - 64 * 1024) * 3) / 4 / 4096) * 4096;

interface Owner { mode: number; uid: number; gid: number }
export type MountEntry =
  | ({ kind: 'dir'; path: string } & Owner)
  | ({ kind: 'file'; path: string; hostPath: string; size: number; stamp: string } & Owner)
  | { kind: 'symlink'; path: string; uid: number; gid: number; target: string };

/** One mount as the walk found it: bind `index`, its entries in copy order (parents first). */
export interface MountPlan {
  index: number;
  mount: HostMount;
  kind: 'file' | 'dir';
  entries: MountEntry[];
  bytes: number;
}

function typeName(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'of an unknown file type';
}

function owner(st: Stats): Owner {
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/** What tells that a file changed since it was copied: a rename over it, a write, a truncate, a touch. */
export function stampOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export const mib = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/** Walks every mount's source; throws INVALID_CONFIG naming the mount and path it cannot copy. */
export async function planMounts(mounts: readonly HostMount[], limit = MOUNT_BYTES_LIMIT): Promise<MountPlan[]> {
  const plans: MountPlan[] = [];
  let total = 0;
  for (const [index, mount] of mounts.entries()) {
    const field = `mounts[${index}]`;
    const invalid = (what: string) => new VcError('INVALID_CONFIG', `${field} (${mount.source} -> ${mount.destination}): ${what}`);
    const count = (size: number, path: string) => {
      total += size;
      if (total > limit) {
        throw invalid(`${path} makes ${total} bytes (${mib(total)}) of files to copy into the container, over the limit of ${limit} bytes (${mib(limit)}) per container`);
      }
    };
    // The source itself is followed, as a bind mount of a symlink binds what it points to.
    const top = await stat(mount.source).catch((err: NodeJS.ErrnoException) => {
      throw invalid(`source: ${err.code === 'ENOENT' ? 'does not exist' : err.message}`);
    });
    const plan: MountPlan = { index, mount, kind: top.isDirectory() ? 'dir' : 'file', entries: [], bytes: 0 };
    if (top.isFile()) {
      count(top.size, mount.source);
      plan.entries.push({ kind: 'file', path: '', hostPath: mount.source, size: top.size, stamp: stampOf(top), ...owner(top) });
    } else if (top.isDirectory()) {
      plan.entries.push({ kind: 'dir', path: '', ...owner(top) });
      await walk(mount.source, '', plan.entries, invalid, count);
    } else {
      throw invalid(`${mount.source} is ${typeName(top)}: only regular files, directories and symlinks can be copied into a container`);
    }
    plan.bytes = plan.entries.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0);
    plans.push(plan);
  }
  return plans;
}

async function walk(
  hostDir: string, rel: string, out: MountEntry[], invalid: (what: string) => VcError, count: (size: number, path: string) => void,
): Promise<void> {
  const names = (await readdir(hostDir, { encoding: 'buffer' })).sort(Buffer.compare);
  for (const raw of names) {
    const name = raw.toString('utf8');
    const hostPath = join(hostDir, name);
    // The agent takes paths as JSON strings: a name that is not UTF-8 would arrive changed.
    if (!Buffer.from(name, 'utf8').equals(raw)) throw invalid(`${hostPath}: the name is not valid UTF-8`);
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(hostPath);
    if (st.isDirectory()) {
      out.push({ kind: 'dir', path, ...owner(st) });
      await walk(hostPath, path, out, invalid, count);
    } else if (st.isFile()) {
      count(st.size, hostPath);
      out.push({ kind: 'file', path, hostPath, size: st.size, stamp: stampOf(st), ...owner(st) });
    } else if (st.isSymbolicLink()) {
      out.push({ kind: 'symlink', path, uid: st.uid, gid: st.gid, target: await readlink(hostPath) });
    } else {
      throw invalid(`${hostPath} is ${typeName(st)}: only regular files, directories and symlinks can be copied into a container`);
    }
  }
}

/** create_container's `binds`, one per mount in order (bind n is mount n). */
export function bindsOf(plans: readonly MountPlan[]): Array<{ destination: string; kind: 'file' | 'dir'; readOnly: boolean }> {
  return plans.map((p) => ({ destination: p.mount.destination, kind: p.kind, readOnly: p.mount.readOnly }));
}

/**
 * Copies every entry into its bind's staging area in the guest: directories before what is in
 * them, files in chunks of PUT_CHUNK_BYTES (the first truncates, so a copy over an older one
 * leaves no stale tail). A file that grew since the walk is copied as it is now, within the limit.
 */
export async function copyMountsIn(
  agent: AgentClient, id: string, plans: readonly MountPlan[], options: { signal?: AbortSignal; limit?: number } = {},
): Promise<void> {
  const budget = { left: options.limit ?? MOUNT_BYTES_LIMIT, limit: options.limit ?? MOUNT_BYTES_LIMIT };
  for (const plan of plans) {
    for (const e of plan.entries) await putEntry(agent, id, plan, e, budget, options.signal);
  }
}

/** Puts one entry of `plan` into its bind; file bytes are counted against `budget.left`. */
export async function putEntry(
  agent: AgentClient, id: string, plan: MountPlan, e: MountEntry, budget: { left: number; limit: number }, signal?: AbortSignal,
): Promise<void> {
  const put = (args: Record<string, unknown>) => agent.request('put_file', { id, bind: plan.index, ...args }, { signal });
  if (e.kind === 'dir') {
    await put({ path: e.path, kind: 'dir', mode: e.mode, uid: e.uid, gid: e.gid });
  } else if (e.kind === 'symlink') {
    await put({ path: e.path, kind: 'symlink', uid: e.uid, gid: e.gid, target: e.target });
  } else {
    for await (const chunk of fileChunks(e.hostPath)) {
      budget.left -= chunk.data.length;
      if (budget.left < 0) {
        throw new VcError('INVALID_CONFIG', `mounts[${plan.index}] (${plan.mount.source} -> ${plan.mount.destination}): ${e.hostPath} grew while it was copied, past the limit of ${budget.limit} bytes (${mib(budget.limit)}) per container`);
      }
      await put({
        path: e.path, kind: 'file', mode: e.mode, uid: e.uid, gid: e.gid,
        data: chunk.data.toString('base64'), offset: chunk.offset, ...(chunk.offset === 0 ? { truncate: true } : {}),
      });
    }
  }
}

/** The file's content in PUT_CHUNK_BYTES pieces; one empty piece for an empty file. */
export async function* fileChunks(path: string, chunkBytes = PUT_CHUNK_BYTES): AsyncGenerator<{ offset: number; data: Buffer }> {
  // Not followed, never waited on: what the walk saw as a file may have been replaced since.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw new VcError('INVALID_CONFIG', `${path} is no longer a regular file`);
    let offset = 0;
    for (;;) {
      const buffer = Buffer.alloc(chunkBytes);
      let filled = 0;
      while (filled < chunkBytes) {
        const { bytesRead } = await handle.read(buffer, filled, chunkBytes - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled > 0 || offset === 0) yield { offset, data: buffer.subarray(0, filled) };
      if (filled < chunkBytes) return;
      offset += filled;
    }
  } finally {
    await handle.close();
  }
}
