// Whether this host runs the built-in VMM's freestanding test guests: a KVM device that opens and
// speaks API 12 (real KVM or PVM; `$VC_KVM_DEVICE` moves or hides it) and `vc-vmm caps` content
// with it. scripts/test.js asks this to decide where test/kvm runs: here (L0), or inside the
// nested harness's L1, whose kvm_amd always can.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
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

/**
 * For every file of test/kvm: a first test that fails, naming why, where the test guests cannot
 * run. These tests are never skipped: scripts/test.js runs them in L1 on such hosts.
 */
export function requireTestGuestHost(): void {
  test('this host runs the test guests (on hosts that cannot, scripts/test.js runs test/kvm in L1)', () => {
    const problem = testGuestHostProblem();
    assert.is(problem, null, `test/kvm needs KVM: ${problem}`);
  });
}
