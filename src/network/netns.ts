// A pod's own network namespace, kept by a bind mount of its nsfs file onto `<podDir>/netns` (as
// `unshare --net=FILE` makes it; here the addon makes and unmounts it, no process spawned: each
// spawn cost 0.1–0.5 s in the nested harness's L1) rather than under the global /run/netns of
// `ip netns`: the name cannot clash between state roots, it is removed with its pod, and gc finds it in the pod
// directory. Everything that takes a namespace here takes a path (nsenter --net=PATH, CNI_NETNS),
// so a caller's namespace (`netns` mode: /run/netns/X, /proc/PID/ns/net) works the same way.
//
// Crash-only: `planPodNetns` returns the record the caller writes BEFORE `createNetns`;
// `removeNetns(plan)` undoes any prefix of `createNetns` (no file, an empty file, a mount, even a
// mount made twice) and is idempotent. A namespace the pod does not own (`owned: false`) is never
// made or removed.
import type { NetnsPlan } from '../model/network.js';
export type { NetnsPlan } from '../model/network.js';
import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { VcError } from '../errors.js';
import { native } from '../native.js';

/** statfs f_type of nsfs: a mounted namespace file (or a /proc/PID/ns/net link) reports it. */
export const NSFS_MAGIC = 0x6e736673;

/** The namespace a pod in bridge mode gets: `<podDir>/netns`. Pure: record it, then create it. */
export function planPodNetns(podDir: string): NetnsPlan {
  return { path: join(podDir, 'netns'), owned: true };
}

/** A namespace the caller made and keeps (netns mode). */
export function givenNetns(path: string): NetnsPlan {
  if (!path.startsWith('/')) throw new VcError('INVALID_CONFIG', `network namespace path must be absolute: ${JSON.stringify(path)}`);
  return { path, owned: false };
}

/** True when `path` is a network namespace file (nsfs), false when absent or anything else. */
export async function isNetns(path: string): Promise<boolean> {
  try {
    return Number((await statfs(path)).type) === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes the namespace of an owned plan (idempotent: a namespace already mounted there is kept)
 * with its `lo` up; checks that a given one exists.
 */
export async function createNetns(plan: NetnsPlan): Promise<void> {
  if (!plan.owned) {
    if (!(await isNetns(plan.path))) throw new VcError('NETWORK_FAILED', `${plan.path} is not a network namespace (nsfs file)`);
    return;
  }
  if (await isNetns(plan.path)) return;
  // The mount point: an empty file, as `ip netns add` makes it. Left from a crash: reused.
  await (await open(plan.path, 'a', 0o444)).close();
  try {
    native().makeNetns(plan.path);
  } catch (err) {
    throw new VcError('NETWORK_FAILED', `cannot make network namespace ${plan.path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Undoes `createNetns` for an owned plan, whatever part of it ran: unmounts (every stacked mount)
 * and removes the file. A given namespace is left alone. Safe to call again.
 */
export async function removeNetns(plan: NetnsPlan): Promise<void> {
  if (!plan.owned) return;
  try {
    native().unmountNetns(plan.path);
  } catch (err) {
    throw new VcError('NETWORK_FAILED', `cannot unmount network namespace ${plan.path}: ${(err as Error).message}`, { cause: err });
  }
  if (await isNetns(plan.path)) throw new VcError('NETWORK_FAILED', `network namespace ${plan.path} is still mounted after unmounting it`);
  await rm(plan.path, { force: true });
}
