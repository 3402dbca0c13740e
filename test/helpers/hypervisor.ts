// The integration tests run on QEMU on the host, and again on the built-in VMM inside the
// nested-KVM harness (test/nested/*), which sets VC_TEST_HYPERVISOR=kvm before loading them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const testHypervisor: 'qemu' | 'kvm' = process.env.VC_TEST_HYPERVISOR === 'kvm' ? 'kvm' : 'qemu';

/** The cgroup directories recorded for a pod's VMM (built-in VMM only; [] otherwise). */
export function recordedCgroup(root: string, podId: string): string[] {
  const state = JSON.parse(readFileSync(join(root, 'pods', podId, 'state.json'), 'utf8')) as { vmm?: { cgroup?: { paths: string[] } } };
  return state.vmm?.cgroup?.paths ?? [];
}
