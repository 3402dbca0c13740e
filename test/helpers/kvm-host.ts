// test/kvm's guard: every file there first checks that this host runs the test guests
// (testGuestHostProblem, defined in test/harness/test-guest-host.ts and shared with the bench).
// scripts/test.js asks the same question to decide where test/kvm runs: here (L0), or inside the
// nested harness's L1, whose kvm_amd always can.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGuestHostProblem } from '../harness/test-guest-host.js';

export { testGuestHostProblem };

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
