// The integration tests run on QEMU on the host, and again on the built-in VMM inside the
// nested-KVM harness (test/nested/*), which sets VC_TEST_HYPERVISOR=kvm before loading them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const testHypervisor: 'qemu' | 'kvm' = process.env.VC_TEST_HYPERVISOR === 'kvm' ? 'kvm' : 'qemu';

/**
 * The network of the pods of files that are not about networks: the default (bridge) on the host;
 * `none` where a test/nested wrapper sets VC_TEST_NETWORK=none, because a bridge costs ≈ 12 s
 * per pod lifecycle in the emulated L1 (CNI plugins and ip/tc runs) and the built-in VMM's
 * networking has its own file there (kvm-network).
 */
export const testNetwork: 'none' | undefined = process.env.VC_TEST_NETWORK === 'none' ? 'none' : undefined;

/** The cgroup directories recorded for a pod's VMM (built-in VMM only; [] otherwise). */
export function recordedCgroup(root: string, podId: string): string[] {
  const state = JSON.parse(readFileSync(join(root, 'pods', podId, 'state.json'), 'utf8')) as { vmm?: { cgroup?: { paths: string[] } } };
  return state.vmm?.cgroup?.paths ?? [];
}
