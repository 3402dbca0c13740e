// What a container's mounts last put into the guest, kept beside its record
// (pods/<pod>/containers/<id>.mounts; not .json, so ContainerStore.ids never takes it for a
// container). Written atomically after the guest has what it says: a crash before the write
// leaves the older manifest, and the next refresh puts again what differs from it (put_file is
// idempotent, remove_file of what is gone is no error).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VcError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import type { PodStore } from './pod-store.js';

/** One entry as it was when copied; `stamp` (inode, size, mtime, ctime) tells a file changed. */
export interface ManifestEntry {
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  uid: number;
  gid: number;
  mode?: number;
  stamp?: string;
  target?: string;
}

export interface BindManifest {
  kind: 'file' | 'dir';
  entries: ManifestEntry[];
}

export interface MountManifest {
  version: 1;
  /** Bind n is the container's mounts[n]. */
  binds: BindManifest[];
}

export function manifestPath(pods: PodStore, podId: string, id: string): string {
  return join(pods.paths(podId).dir, 'containers', `${id}.mounts`);
}

/** The manifest, or undefined if none was written (a container created before manifests, or a crash before the first write). */
export async function readManifest(pods: PodStore, podId: string, id: string): Promise<MountManifest | undefined> {
  const path = manifestPath(pods, podId, id);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const m = JSON.parse(text) as MountManifest;
    if (m.version !== 1 || !Array.isArray(m.binds) || !m.binds.every((b) => Array.isArray(b?.entries))) throw new Error('not a version 1 manifest');
    return m;
  } catch (err) {
    throw new VcError('STATE_CORRUPT', `${path}: ${(err as Error).message}`);
  }
}

export async function writeManifest(pods: PodStore, podId: string, id: string, manifest: MountManifest): Promise<void> {
  await writeFileAtomic(manifestPath(pods, podId, id), JSON.stringify(manifest), { createDir: false, mode: 0o600 });
}

export async function removeManifest(pods: PodStore, podId: string, id: string): Promise<void> {
  await rm(manifestPath(pods, podId, id), { force: true });
}
