// A host directory used as a rootfs. Its digest hashes everything mkfs.erofs will put in the image
// — names, types, modes, owners, file bytes, symlink targets, device numbers, which names share an
// inode — and nothing it drops (times: the image is built with -T0; xattrs: built with xattrs off),
// so an unchanged tree hits the cache and any change makes a new image. The tree is the caller's:
// it is read in place, not copied; changing it while an image is being built gives an image that
// matches neither state (the digest is computed first).
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { GuestError } from '../errors.js';
import { throwIfAborted } from '../../errors.js';

/** Bump when what the hash covers changes. */
const DIR_HASH_VERSION = 1;

export async function resolveDirectory(path: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(path);
  } catch (err) {
    throw new GuestError('IMAGE_NOT_FOUND', `${path}: cannot use as an image directory: ${(err as Error).message}`, { cause: err });
  }
  if (!(await lstat(root)).isDirectory()) throw new GuestError('IMAGE_NOT_FOUND', `${path}: not a directory`);
  return root;
}

/**
 * The digest of a tree the caller names instead of hashing it (containerd's committed snapshots
 * never change, so their chain names the tree): its own namespace, never equal to a content hash.
 */
export function keyedDirectoryDigest(key: string): string {
  return createHash('sha256').update(`vc-dir-key ${DIR_HASH_VERSION}\n${key}`).digest('hex');
}

export async function hashDirectory(root: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`vc-dir-image ${DIR_HASH_VERSION}\n`);
  const inodes = new Map<string, string>();
  await hashEntry(root, '', hash, inodes, signal);
  return hash.digest('hex');
}

async function hashEntry(root: string, rel: string, hash: Hash, inodes: Map<string, string>, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal, `hashing ${root}`);
  const path = rel === '' ? root : join(root, rel);
  const st = await lstat(path);
  // JSON quoting keeps any byte of a name from being confused with the separators.
  const head = `${JSON.stringify(rel)} ${st.mode.toString(8)} ${st.uid}:${st.gid}`;
  if (st.isDirectory()) {
    hash.update(`${head} dir\n`);
    // Byte order, as mkfs.erofs sorts directory entries; readdir order is the filesystem's whim.
    const names = (await readdir(path)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) await hashEntry(root, rel === '' ? name : `${rel}/${name}`, hash, inodes, signal);
    return;
  }
  const inode = `${st.dev}:${st.ino}`;
  const first = st.nlink > 1 ? inodes.get(inode) : undefined;
  if (first !== undefined) {
    hash.update(`${head} hardlink ${JSON.stringify(first)}\n`);
    return;
  }
  if (st.nlink > 1) inodes.set(inode, rel);
  if (st.isSymbolicLink()) {
    hash.update(`${head} symlink ${JSON.stringify(await readlink(path))}\n`);
  } else if (st.isFile()) {
    hash.update(`${head} file ${st.size}\n`);
    try {
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    } catch (err) {
      throw new GuestError('IMAGE_INVALID', `${path}: cannot read: ${(err as Error).message}`, { cause: err });
    }
  } else {
    hash.update(`${head} special ${st.rdev}\n`);
  }
}
