// Whether a pod's hypervisor drops root, and to whom (docs/security.md): the same switch for both
// hypervisors — vc-vmm's jail (kvm/jail.ts) and QEMU's -runas. On by default where it can be (the
// drop needs root), set through the environment:
//   VC_VMM_JAIL       unset or "" (on when root), "1"/"on" (on; an error when not root), "0"/"off"
//   VC_VMM_JAIL_USER  UID:GID to drop to (default 65534:65534, nobody:nogroup)
// A pure function of its inputs, unit-tested (test/unit/hypervisor/kvm-jail.test.ts).
import { VcError } from '../errors.js';

export interface UnprivilegedUser { uid: number; gid: number }

export const DEFAULT_JAIL_USER: UnprivilegedUser = { uid: 65534, gid: 65534 };

function invalid(name: string, value: string, why: string): VcError {
  return new VcError('INVALID_CONFIG', `${name}=${JSON.stringify(value)}: ${why}`);
}

/** The user the hypervisor drops to, or null when it keeps root; throws INVALID_CONFIG naming a bad variable. */
export function unprivilegedUser(env: NodeJS.ProcessEnv, isRoot: boolean): UnprivilegedUser | null {
  const mode = env.VC_VMM_JAIL ?? '';
  if (!['', '0', 'off', '1', 'on'].includes(mode)) throw invalid('VC_VMM_JAIL', mode, 'must be "1"/"on", "0"/"off" or empty (on when root)');
  if (mode === '0' || mode === 'off') return null;
  if (!isRoot) {
    if (mode === '') return null;
    throw invalid('VC_VMM_JAIL', mode, 'the VMM jail needs root (namespaces, mounts, the uid drop); unset it to run without one');
  }
  const userText = env.VC_VMM_JAIL_USER ?? '';
  if (userText === '') return DEFAULT_JAIL_USER;
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(userText);
  const uid = Number(m?.[1]), gid = Number(m?.[2]);
  if (!m || uid > 0xfffffffe || gid > 0xfffffffe) throw invalid('VC_VMM_JAIL_USER', userText, 'must be UID:GID, two integers in 0..4294967294');
  if (uid === 0 || gid === 0) throw invalid('VC_VMM_JAIL_USER', userText, 'the jail runs the VMM unprivileged: uid and gid must not be 0');
  return { uid, gid };
}
