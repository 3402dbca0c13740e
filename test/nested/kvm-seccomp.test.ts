// The built-in VMM's seccomp filters under a real pod (L1: the Debian cloud kernel boots only
// there): the pod runs with every VMM thread filtered; then, through the test-only
// VC_VMM_TEST_SECCOMP_VIOLATION hook (native/vmm/seccomp/test_hook.h), a vCPU thread attempts
// execve, the VMM dies of SIGSYS, and the pod is reported stopped with that reason. Per thread
// kind on the test guest: test/kvm/vmm-seccomp.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { createPod, deletePod, enterPod, podStatus, startPod } from '../../src/index.js';
import { waitForExit } from '../../src/host/process.js';
import { codeOf } from '../helpers/errors.js';
import { readAll, teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('vcsec');
const root = tmp.path;
test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('a vCPU thread that breaks its seccomp filter ends the VMM with SIGSYS; the pod says so', async () => {
  await createPod({ id: 'sec', hypervisor: 'kvm', memoryMiB: 256, network: 'none' }, { root });
  // Read by vc-vmm when it starts (execFile passes this process's environment on).
  process.env.VC_VMM_TEST_SECCOMP_VIOLATION = 'vcpu';
  let started;
  try {
    started = await startPod('sec', { root });
  } finally {
    delete process.env.VC_VMM_TEST_SECCOMP_VIOLATION;
  }
  // The guest got as far as its agent with every thread filtered.
  const entered = await enterPod('sec', ['sh', '-c', 'echo up'], { root });
  const [out, exit] = await Promise.all([readAll(entered.stdout), entered.wait()]);
  assert.equal(exit, { exitCode: 0, signal: null });
  assert.is(out, 'up\n');

  process.kill(started.pid!, 'SIGUSR2');
  assert.ok(await waitForExit(started.pid!, 10_000), 'the VMM died');
  const status = await podStatus('sec', { root });
  assert.is(status.state, 'stopped');
  assert.ok(status.vmmDied);
  assert.match(status.stopReason ?? '', new RegExp(
    `^the kvm process \\(pid ${started.pid}\\) exited unexpectedly: killed by SIGSYS \\(a system call its seccomp filter does not allow\\)$`));
  assert.is(await codeOf(enterPod('sec', ['true'], { root })), 'POD_NOT_RUNNING');

  await deletePod('sec', { root });
  assert.not.ok(existsSync(`${root}/pods/sec`));
  assert.equal(vmmProcessesUnder(root), []);
});

test.run();
