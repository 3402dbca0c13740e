/**
 * One record per container under `<root>/containers/<id>/state.json`, written (temp file + rename)
 * before each step, so a command run after any crash finds what was under way: `delete --force`
 * finishes or undoes whatever a record says, `state` answers from it without the daemon.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeNetns } from '../network/netns.js';

export type RecordStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped' | 'deleting';

export interface ExitRecord {
  kind: 'exited' | 'signalled';
  /** The exit code, or the signal's number. */
  value: number;
}

export interface ContainerRecord {
  id: string;
  bundle: string;
  /** The pod (under `<root>/pods`) the container runs in. */
  pod: string;
  /** The container's id in the API (the engine's id when it fits). */
  containerId: string;
  /** Whether deleting this container takes its pod down (a lone container or a sandbox). */
  ownsPod: boolean;
  annotations: Record<string, string>;
  status: RecordStatus;
  /** The holder's host pid (what `--pid-file` got); 0 until the holder is in place. */
  holderPid: number;
  /**
   * The holder's own network namespace, pinned by a bind mount at `<record dir>/netns` (set when the
   * spec asks for a new one without a path: docker). The pod takes its network from here, not from
   * `/proc/<holder pid>`, so a reused pid can never name another namespace.
   */
  netns?: string;
  createdAt: string;
  exit?: ExitRecord;
}

export const containersDir = (root: string): string => join(root, 'containers');
export const recordDir = (root: string, id: string): string => join(containersDir(root), id);
/**
 * Where the root's pods live (the API's root): `<root>/pods`, unless that is too long for the pods'
 * unix sockets (`pods/<id>/agent.10.sock` and the like must fit 107 bytes) — docker hands every
 * runtime `<exec-root>/runtime-runc/moby`, long under a test's directory — then a short directory
 * named after the root: `/run/virtc-runtime/pods-<12 hex of its sha256>`.
 */
const PODS_ROOT_MAX = 45;
export function podsRoot(root: string): string {
  const inRoot = join(root, 'pods');
  if (Buffer.byteLength(inRoot) <= PODS_ROOT_MAX) return inRoot;
  return join(SHORT_PODS_PARENT, `pods-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`);
}
const SHORT_PODS_PARENT = '/run/virtc-runtime';

/** When the daemon leaves with no pod left: the pods root's empty directories (and the short one's parent) go. */
export function removeEmptyPodsRoot(root: string): void {
  const dir = podsRoot(root);
  const dirs = [join(dir, 'pods'), dir, ...(dir.startsWith(`${SHORT_PODS_PARENT}/`) ? [SHORT_PODS_PARENT] : [])];
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      return; // not empty (a pod is left, or another root's) or already gone
    }
  }
}
export const daemonSocket = (root: string): string => join(root, 'daemon.sock');

export class StateError extends Error {}

export function readRecord(root: string, id: string): ContainerRecord | null {
  const file = join(recordDir(root, id), 'state.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateError(`${file}: ${(err as Error).message}`);
  }
  try {
    const record = JSON.parse(text) as ContainerRecord;
    if (record.id !== id || typeof record.status !== 'string') throw new Error('not a container record');
    return record;
  } catch (err) {
    throw new StateError(`${file}: unreadable (${(err as Error).message}); \`delete --force ${id}\` removes it`);
  }
}

export function writeRecord(root: string, record: ContainerRecord): void {
  const dir = recordDir(root, record.id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.state.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dir, 'state.json'));
}

/** Where a holder's own network namespace is pinned (a mount point inside the record's directory). */
export const netnsPin = (root: string, id: string): string => join(recordDir(root, id), 'netns');

/** Removes the record's directory; a pinned namespace in it is unmounted first (any part of a pin). */
export async function removeRecord(root: string, id: string): Promise<void> {
  await removeNetns({ path: netnsPin(root, id), owned: true });
  rmSync(recordDir(root, id), { recursive: true, force: true });
}

export function listRecordIds(root: string): string[] {
  try {
    return readdirSync(containersDir(root)).sort();
  } catch {
    return [];
  }
}

/** Whether a host process with this pid exists (0: never had one). */
export function processAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
