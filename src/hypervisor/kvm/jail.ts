// The jail vc-vmm makes for itself (docs/vmm.md "Jail"), when the pod's hypervisor drops root
// (../unprivileged.ts: VC_VMM_JAIL, VC_VMM_JAIL_USER). Pure functions of their inputs, unit-tested
// without KVM (test/unit/hypervisor/kvm-jail.test.ts).
import { join } from 'node:path';
import type { PodPaths } from '../../store/paths.js';
import { unprivilegedUser } from '../unprivileged.js';

export interface VmmJail {
  /** The jail's root: an empty directory in the pod directory, recorded among the pod's resources. */
  root: string;
  uid: number;
  gid: number;
  /** Host directories the jailed VMM sees, read-only, at the same paths: where attached disks live. */
  readOnlyDirs: string[];
}

/** The jail root of a pod: known before the start, so it is among the pod's resources. */
export function jailRoot(paths: Pick<PodPaths, 'dir'>): string {
  return join(paths.dir, 'vmm-root');
}

/** The jail for a pod, or null when it is off; throws INVALID_CONFIG naming a bad variable. */
export function vmmJail(env: NodeJS.ProcessEnv, isRoot: boolean, paths: Pick<PodPaths, 'dir'>, diskDirs: readonly string[]): VmmJail | null {
  const user = unprivilegedUser(env, isRoot);
  if (!user) return null;
  return { root: jailRoot(paths), ...user, readOnlyDirs: [...diskDirs] };
}

/** vc-vmm's jail flags (native/vmm/jail/jail_options.cc). */
export function jailArgs(jail: VmmJail | null): string[] {
  if (!jail) return [];
  return ['--jail', jail.root, '--jail-user', `${jail.uid}:${jail.gid}`, ...jail.readOnlyDirs.flatMap((dir) => ['--jail-ro', dir])];
}
