// How StagingTree writes one node of the image: the checks (names, parents, whiteouts) are done by
// then, so these only create the node at `path` and give it its owner, mode and time. Owners are
// applied only when privileged; unprivileged, files stay owner-readable so mkfs.erofs can read them.
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, lstatSync, lutimesSync, openSync, symlinkSync,
  utimesSync, writeSync, type Stats,
} from 'node:fs';
import { run } from '../apt.js';

export interface NodeMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  privileged: boolean;
}

export function lstatOrNull(path: string): Stats | null {
  return lstatSync(path, { throwIfNoEntry: false }) ?? null;
}

/** A new regular file (never written through an existing entry) with the entry's content. */
export async function writeFileNode(path: string, data: AsyncIterable<Uint8Array>, meta: NodeMeta): Promise<void> {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for await (const chunk of data) {
      for (let done = 0; done < chunk.byteLength;) done += writeSync(fd, chunk, done, chunk.byteLength - done);
    }
    if (meta.privileged) fchownSync(fd, meta.uid, meta.gid);
    fchmodSync(fd, meta.privileged ? meta.mode : meta.mode | 0o400); // after chown, which clears set-id bits
    futimesSync(fd, meta.mtime, meta.mtime);
  } finally {
    closeSync(fd);
  }
}

export function writeSymlink(path: string, target: string, meta: NodeMeta): void {
  symlinkSync(target, path);
  if (meta.privileged) lchownSync(path, meta.uid, meta.gid);
  lutimesSync(path, meta.mtime, meta.mtime);
}

/** Gives a node made by mkfifo its owner (when privileged), mode and time. */
export function ownAndTime(path: string, meta: NodeMeta): void {
  if (meta.privileged) lchownSync(path, meta.uid, meta.gid);
  chmodSync(path, meta.mode); // after chown, which clears set-id bits
  utimesSync(path, meta.mtime, meta.mtime);
}

/** Node has no mknod(2); coreutils' mkfifo does it. */
export async function mkfifo(path: string, mode: number): Promise<void> {
  await run('mkfifo', ['-m', (mode & 0o777).toString(8), '--', path]);
}
