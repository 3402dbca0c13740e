// Whether this host runs the built-in VMM's freestanding test guests: a KVM device that opens and
// speaks API 12 (real KVM or PVM; `$VC_KVM_DEVICE` moves or hides it) and `vc-vmm caps` content
// with it. Both scripts/test.js (where test/kvm runs) and the bench (where its host sections run)
// decide on this one criterion: here (L0) when it is null, else inside the nested harness's L1,
// whose kvm_amd always can. It lives in test/harness (no uvu) so that bench/ can import it.
import { spawnSync } from 'node:child_process';
import { native, nativeExecutable } from '../../src/native.js';

/** Null when the test guests run here, else why not. */
export function testGuestHostProblem(): string | null {
  const probe = native().kvmProbe();
  if (!probe.available) return probe.reason ?? `${probe.device} is not a usable KVM device`;
  let vmm: string;
  try {
    vmm = nativeExecutable('vc-vmm');
  } catch (err) {
    return (err as Error).message;
  }
  const caps = spawnSync(vmm, ['caps'], { encoding: 'utf8' });
  if (caps.status !== 0) return `vc-vmm caps: ${caps.stdout}${caps.stderr}`.trim();
  return null;
}
