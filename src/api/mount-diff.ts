// What a refresh of a container's mounts must do in the guest: the host's sources walked now
// (planMounts) against the manifest of what was put there last (store/mount-manifest.ts). Only
// what the host changed is touched: a file the container wrote into a writable bind, which no
// manifest lists, is left alone.
import { VcError } from '../errors.js';
import type { BindManifest, ManifestEntry, MountManifest } from '../store/mount-manifest.js';
import type { MountEntry, MountPlan } from './container-files.js';

/** One bind's changes: paths to remove first (no one inside another), then entries to put, parents first. */
export interface BindChanges {
  plan: MountPlan;
  removes: string[];
  puts: MountEntry[];
}

function entryOf(e: MountEntry): ManifestEntry {
  if (e.kind === 'symlink') return { path: e.path, kind: e.kind, uid: e.uid, gid: e.gid, target: e.target };
  if (e.kind === 'dir') return { path: e.path, kind: e.kind, uid: e.uid, gid: e.gid, mode: e.mode };
  return { path: e.path, kind: e.kind, uid: e.uid, gid: e.gid, mode: e.mode, stamp: e.stamp };
}

/** The manifest that says the guest has exactly what `plans` found. */
export function manifestOf(plans: readonly MountPlan[]): MountManifest {
  return { version: 1, binds: plans.map((p) => ({ kind: p.kind, entries: p.entries.map(entryOf) })) };
}

function same(a: ManifestEntry, b: ManifestEntry): boolean {
  return a.kind === b.kind && a.uid === b.uid && a.gid === b.gid && a.mode === b.mode && a.stamp === b.stamp && a.target === b.target;
}

/** Whether `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * The changes that bring each bind from what `manifest` says it has to what `plans` found. With
 * no manifest every entry is put and nothing removed (what the guest has is unknown). A source
 * whose kind changed (a file now a directory, or back) cannot be carried: the bind's kind is fixed
 * at create.
 */
export function diffMounts(manifest: MountManifest | undefined, plans: readonly MountPlan[]): BindChanges[] {
  return plans.map((plan) => diffBind(manifest?.binds[plan.index], plan));
}

function diffBind(old: BindManifest | undefined, plan: MountPlan): BindChanges {
  if (!old) return { plan, removes: [], puts: [...plan.entries] };
  if (old.kind !== plan.kind) {
    throw new VcError('INVALID_CONFIG', `mounts[${plan.index}] (${plan.mount.source} -> ${plan.mount.destination}): the source was a ${old.kind === 'dir' ? 'directory' : 'file'} when the container was created and is now a ${plan.kind === 'dir' ? 'directory' : 'file'}; a bind keeps its kind: recreate the container`);
  }
  const before = new Map(old.entries.map((e) => [e.path, e]));
  const now = new Set(plan.entries.map((e) => e.path));
  const removes: string[] = [];
  const puts: MountEntry[] = [];
  for (const e of plan.entries) {
    const was = before.get(e.path);
    const is = entryOf(e);
    if (was && same(was, is)) continue;
    // A file where a directory was (or the reverse) cannot be written over: the old one goes first.
    if (was && was.kind !== is.kind && e.path !== '' && (was.kind === 'dir' || is.kind === 'dir')) removes.push(e.path);
    puts.push(e);
  }
  for (const path of before.keys()) if (!now.has(path)) removes.push(path);
  removes.sort();
  const outermost = removes.filter((p, i) => !removes.slice(0, i).some((q) => within(p, q)));
  return { plan, removes: outermost, puts };
}

/** Whether any bind has something to do. */
export function hasChanges(changes: readonly BindChanges[]): boolean {
  return changes.some((c) => c.removes.length > 0 || c.puts.length > 0);
}
