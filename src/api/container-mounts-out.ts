// Copying a container's writable mounts back to the host (copyContainerMountsOut): what the
// container wrote into a bind — an emptyDir, /dev/termination-log — read from the guest's staging
// area with list_bind and get_file, which keep answering after the container exited until it is
// deleted. The guest is not trusted: every name and number it answers is checked, and nothing on
// the host is followed — the source is resolved once, each directory below it is checked to be
// a directory (not a symlink) before anything goes in it, and files are renamed into place.
// docs/agent-protocol.md "Binds"; README "Containers".
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, readlink, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentClient, JsonObject } from '../agent/index.js';
import { VcError } from '../errors.js';
import type { HostMount } from '../model/container-config.js';
import { ContainerStore } from '../store/container-store.js';
import { readManifest } from '../store/mount-manifest.js';
import { MOUNT_BYTES_LIMIT, mib } from './container-files.js';
import { lockedRunningPod } from './container.js';
import { storeFor, type CallOptions } from './context.js';
import { withAgent } from './pod-session.js';
import { withPodLock } from './recover.js';

export interface CopyOutOptions extends CallOptions {
  /** The most bytes of files copied out of one container; default MOUNT_BYTES_LIMIT, as for copy-in. */
  limit?: number;
}

export interface CopyOutReport {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** What was not copied, and why: FIFOs, sockets, devices, names that are not UTF-8, a host directory where the guest has a file. */
  skipped: Array<{ mount: number; path: string; why: string }>;
}

/** One entry as the guest describes it, checked. */
interface GuestEntry {
  kind: 'file' | 'dir' | 'symlink' | 'other';
  what: string;
  mode: number;
  uid: number;
  gid: number;
  target?: string;
}

const KINDS = new Set(['file', 'dir', 'symlink', 'fifo', 'socket', 'char-device', 'block-device', 'unknown']);

function guestEntry(r: JsonObject, where: string): GuestEntry {
  const bad = (what: string) => new VcError('AGENT_PROTOCOL', `${where}: the agent answered ${what}`);
  const int = (name: string, max: number) => {
    const v = r[name];
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max) throw bad(`${name} ${JSON.stringify(v)}`);
    return v as number;
  };
  const what = r.kind;
  if (typeof what !== 'string' || !KINDS.has(what)) throw bad(`kind ${JSON.stringify(what)}`);
  const kind = what === 'file' || what === 'dir' || what === 'symlink' ? what : 'other';
  const e: GuestEntry = { kind, what, mode: kind === 'symlink' ? 0 : int('mode', 0o7777), uid: int('uid', 0xfffffffe), gid: int('gid', 0xfffffffe) };
  if (kind === 'symlink') {
    if (typeof r.target !== 'string' || r.target === '' || r.target.includes('\0')) throw bad(`target ${JSON.stringify(r.target)}`);
    e.target = r.target;
  }
  return e;
}

/** A name from list_bind that is one path component. */
function checkedName(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '' || v === '.' || v === '..' || v.includes('/') || v.includes('\0') || Buffer.byteLength(v) > 255) {
    throw new VcError('AGENT_PROTOCOL', `${where}: the agent answered the name ${JSON.stringify(v)}`);
  }
  return v;
}

const isRoot = process.getuid?.() === 0;

class CopyOut {
  readonly report: CopyOutReport = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: [] };

  constructor(
    private readonly agent: AgentClient, private readonly id: string, private readonly limit: number, private readonly signal?: AbortSignal,
  ) {}

  private request(op: string, args: JsonObject): Promise<JsonObject> {
    return this.agent.request(op, { id: this.id, ...args }, { signal: this.signal });
  }

  private skip(mount: number, path: string, why: string): void {
    this.report.skipped.push({ mount, path, why });
  }

  /** A file bind: its source written in place (others may hold it open or have it bound). */
  async fileBind(index: number, mount: HostMount, source: string): Promise<void> {
    const handle = await open(source, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await handle.stat()).isFile()) throw new VcError('INVALID_CONFIG', `mounts[${index}] (${mount.source} -> ${mount.destination}): ${source} is no longer a regular file`);
      const e = await this.readFile(index, mount, '', async (data, offset) => { await handle.write(data, 0, data.length, offset); });
      await handle.truncate(e.size);
      await handle.chmod(e.entry.mode);
      if (isRoot) await handle.chown(e.entry.uid, e.entry.gid);
    } finally {
      await handle.close();
    }
    this.report.files++;
  }

  /** Reads a guest file chunk by chunk into `write`; its description and size. */
  private async readFile(index: number, mount: HostMount, path: string, write: (data: Buffer, offset: number) => Promise<void>): Promise<{ entry: GuestEntry; size: number }> {
    const where = `mounts[${index}] (${mount.source} -> ${mount.destination}): ${JSON.stringify(path)}`;
    for (let offset = 0; ;) {
      const r = await this.request('get_file', { bind: index, path, offset });
      const entry = guestEntry(r, where);
      if (entry.kind !== 'file' || typeof r.data !== 'string') throw new VcError('AGENT_PROTOCOL', `${where}: is now ${entry.what} in the guest`);
      const data = Buffer.from(r.data, 'base64');
      if (data.length === 0) return { entry, size: offset };
      this.report.bytes += data.length;
      if (this.report.bytes > this.limit) {
        throw new VcError('INVALID_CONFIG', `${where} makes ${this.report.bytes} bytes (${mib(this.report.bytes)}) to copy out of the container, over the limit of ${this.limit} bytes (${mib(this.limit)})`);
      }
      await write(data, offset);
      offset += data.length;
    }
  }

  /** The guest directory `rel` of bind `index` into the host directory `hostDir` (checked to be a real directory). */
  async dir(index: number, mount: HostMount, rel: string, hostDir: string): Promise<void> {
    const where = `mounts[${index}] (${mount.source} -> ${mount.destination}): ${JSON.stringify(rel)}`;
    for (let after: string | undefined; ;) {
      const page = await this.request('list_bind', { bind: index, path: rel, ...(after !== undefined ? { after } : {}) });
      if (!Array.isArray(page.entries)) throw new VcError('AGENT_PROTOCOL', `${where}: the agent answered no entries`);
      for (const raw of page.entries as JsonObject[]) {
        const name = checkedName(raw.name, where);
        const path = rel ? `${rel}/${name}` : name;
        if (raw.nameNotUtf8 === true) {
          this.skip(index, path, 'the name is not valid UTF-8');
          continue;
        }
        await this.entry(index, mount, path, join(hostDir, name), guestEntry(raw, `${where}: ${JSON.stringify(name)}`), raw);
      }
      if (page.more !== true) return;
      if (page.entries.length === 0) throw new VcError('AGENT_PROTOCOL', `${where}: the agent answered more to come but no entries`);
      after = checkedName((page.entries[page.entries.length - 1] as JsonObject).name, where);
    }
  }

  private async entry(index: number, mount: HostMount, path: string, hostPath: string, e: GuestEntry, raw: JsonObject): Promise<void> {
    const there = await lstat(hostPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (e.kind === 'other') {
      this.skip(index, path, `a ${e.what}: only regular files, directories and symlinks can be copied out`);
    } else if (there?.isDirectory() && e.kind !== 'dir') {
      this.skip(index, path, `a ${e.kind} in the container, a directory on the host (left as it is)`);
    } else if (e.kind === 'dir') {
      // Whatever else is on the host there (a symlink, a file) is replaced, never followed.
      if (there && !there.isDirectory()) await unlink(hostPath);
      if (!there?.isDirectory()) await mkdir(hostPath, { mode: 0o700 });
      await this.owner(hostPath, e);
      this.report.dirs++;
      await this.dir(index, mount, path, hostPath);
    } else if (e.kind === 'symlink') {
      if (raw.targetNotUtf8 === true) {
        this.skip(index, path, 'the symlink\'s target is not valid UTF-8');
        return;
      }
      if (!(there?.isSymbolicLink() && (await readlink(hostPath)) === e.target)) {
        if (there) await unlink(hostPath);
        await symlink(e.target!, hostPath);
      }
      if (isRoot) await lchown(hostPath, e.uid, e.gid);
      this.report.symlinks++;
    } else {
      // Into a new file beside it, then renamed over whatever is there: never written through a
      // symlink, and never seen half-copied.
      const temp = `${hostPath}.vc-${randomBytes(4).toString('hex')}.tmp`;
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        try {
          const got = await this.readFile(index, mount, path, async (data, offset) => { await handle.write(data, 0, data.length, offset); });
          await handle.sync();
          await this.owner(temp, got.entry);
        } finally {
          await handle.close();
        }
        await rename(temp, hostPath);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      this.report.files++;
    }
  }

  private async owner(path: string, e: GuestEntry): Promise<void> {
    if (isRoot) await lchown(path, e.uid, e.gid);
    await chmod(path, e.mode);
  }
}

/**
 * Writes what the guest has in each writable mount (not readOnly) back to its source on the host:
 * files (replaced whole), directories (made as needed), symlinks (as they are, never followed);
 * owner (when root) and mode as in the guest. Works while the container runs and after it exited,
 * until it is deleted. What the container deleted stays on the host. FIFOs, sockets and devices
 * are not copied (listed in `skipped`); more than `limit` bytes of files is an error.
 */
export async function copyContainerMountsOut(podId: string, id: string, options: CopyOutOptions = {}): Promise<CopyOutReport> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  return withPodLock(store, podId, options, async () => {
    const pod = await lockedRunningPod(store, podId, options);
    const record = await containers.read(podId, id);
    if (record.state === 'creating') throw new VcError('CONTAINER_NOT_FOUND', `container ${id} in pod ${podId} is still being created`);
    const manifest = await readManifest(store, podId, id);
    return withAgent(pod, options.signal, async (agent) => {
      const out = new CopyOut(agent, id, options.limit ?? MOUNT_BYTES_LIMIT, options.signal);
      for (const [index, mount] of (record.config.mounts ?? []).entries()) {
        if (mount.readOnly) continue;
        const invalid = (what: string) => new VcError('INVALID_CONFIG', `mounts[${index}] (${mount.source} -> ${mount.destination}): ${what}`);
        // The source itself is followed once, as at create; nothing below it is.
        const source = await realpath(mount.source).catch((err: NodeJS.ErrnoException) => {
          throw invalid(`source: ${err.code === 'ENOENT' ? 'does not exist any more' : err.message}`);
        });
        const st = await lstat(source);
        const kind = manifest?.binds[index]?.kind ?? (st.isDirectory() ? 'dir' : 'file');
        if (kind === 'dir') {
          if (!st.isDirectory()) throw invalid(`${source} is no longer a directory`);
          await out.dir(index, mount, '', source);
        } else {
          await out.fileBind(index, mount, source);
        }
      }
      return out.report;
    });
  });
}
