// Whether, and how, vc-vmm jails itself (docs/vmm.md "Jail"): on by default where it can be —
// the jail needs root (namespaces, mounts, the uid drop) — and set through the environment:
//   VC_VMM_JAIL       unset or "" (on when root), "1"/"on" (on; an error when not root), "0"/"off"
//   VC_VMM_JAIL_USER  UID:GID the VMM drops to (default 65534:65534, nobody:nogroup)
// Pure functions of their inputs, unit-tested without KVM (test/unit/hypervisor/kvm-jail.test.ts).
import { join } from 'node:path';
import { VcError } from '../../errors.js';
import type { PodPaths } from '../../store/paths.js';

export interface VmmJail {
  /** The jail's root: an empty directory in the pod directory, recorded among the pod's resources. */
  root: string;
  uid: number;
  gid: number;
  /** Host directories the jailed VMM sees, read-only, at the same paths: where attached disks live. */
  readOnlyDirs: string[];
}

export const DEFAULT_JAIL_USER = { uid: 65534, gid: 65534 };

/** The jail root of a pod: known before the start, so it is among the pod's resources. */
export function jailRoot(paths: Pick<PodPaths, 'dir'>): string {
  return join(paths.dir, 'vmm-root');
}

function invalid(name: string, value: string, why: string): VcError {
  return new VcError('INVALID_CONFIG', `${name}=${JSON.stringify(value)}: ${why}`);
}

/** The jail for a pod, or null when it is off; throws INVALID_CONFIG naming a bad variable. */
export function vmmJail(env: NodeJS.ProcessEnv, isRoot: boolean, paths: Pick<PodPaths, 'dir'>, diskDirs: readonly string[]): VmmJail | null {
  const mode = env.VC_VMM_JAIL ?? '';
  if (!['', '0', 'off', '1', 'on'].includes(mode)) throw invalid('VC_VMM_JAIL', mode, 'must be "1"/"on", "0"/"off" or empty (on when root)');
  if (mode === '0' || mode === 'off') return null;
  if (!isRoot) {
    if (mode === '') return null;
    throw invalid('VC_VMM_JAIL', mode, 'the VMM jail needs root (namespaces, mounts, the uid drop); unset it to run without one');
  }
  const userText = env.VC_VMM_JAIL_USER ?? '';
  let user = DEFAULT_JAIL_USER;
  if (userText !== '') {
    const m = /^(\d{1,10}):(\d{1,10})$/.exec(userText);
    const uid = Number(m?.[1]), gid = Number(m?.[2]);
    if (!m || uid > 0xfffffffe || gid > 0xfffffffe) throw invalid('VC_VMM_JAIL_USER', userText, 'must be UID:GID, two integers in 0..4294967294');
    if (uid === 0 || gid === 0) throw invalid('VC_VMM_JAIL_USER', userText, 'the jail runs the VMM unprivileged: uid and gid must not be 0');
    user = { uid, gid };
  }
  return { root: jailRoot(paths), ...user, readOnlyDirs: [...diskDirs] };
}

/** vc-vmm's jail flags (native/vmm/jail/jail_options.cc). */
export function jailArgs(jail: VmmJail | null): string[] {
  if (!jail) return [];
  return ['--jail', jail.root, '--jail-user', `${jail.uid}:${jail.gid}`, ...jail.readOnlyDirs.flatMap((dir) => ['--jail-ro', dir])];
}
