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
  /** RLIMIT_FSIZE in the jail when the default (vc-vmm's 1 GiB) is too small: a snapshot's memory file. */
  maxFileBytes?: number;
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
  return [
    '--jail', jail.root, '--jail-user', `${jail.uid}:${jail.gid}`, ...jail.readOnlyDirs.flatMap((dir) => ['--jail-ro', dir]),
    ...(jail.maxFileBytes !== undefined ? ['--jail-fsize', String(jail.maxFileBytes)] : []),
  ];
}

/** vc-vmm's own RLIMIT_FSIZE in the jail (native/vmm/jail/jail.h, max_file_bytes). */
export const VMM_DEFAULT_FSIZE = 2 ** 30;

/**
 * The RLIMIT_FSIZE a jailed VM of `memoryMiB` needs to write its snapshot: the memory file is a
 * 4 KiB header page and then RAM. Never below vc-vmm's default (the console and log share it).
 */
export function snapshotFileLimit(memoryMiB: number): number {
  return Math.max(VMM_DEFAULT_FSIZE, memoryMiB * 1024 * 1024 + 4096);
}
