// A Linux guest with the agent, snapshotted and restored by the built-in VMM inside the nested-KVM
// harness: vc-vmm boots the pod's kernel and initrd with a pod's devices (vsock, rng, a read-only
// block slot), the agent answers over vsock, the `snapshot` control op writes the two files and
// stops the VM, and `vc-vmm restore` with new socket paths brings it back running: the agent
// answers again on the new vsock socket (after the transport reset the VMM queued, which dropped
// the connection the snapshot held), without a second boot.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { vmmAlive, vmmControl } from '../helpers/vmm-control.js';
import { AgentClient } from '../../src/agent/client.js';
import { dialHybridVsock } from '../../src/agent/dial.js';
import { AGENT_VSOCK_PORT, GUEST_CID } from '../../src/hypervisor/kvm/config.js';
import { guestCmdline, kvmCmdline } from '../../src/hypervisor/cmdline.js';
import { buildInitrd } from '../../src/guest/initrd.js';
import { resolveKernel } from '../../src/guest/kernel.js';
import { nativeExecutable } from '../../src/native.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const vcVmm = nativeExecutable('vc-vmm');
const dir = tempDir('vc-ksnap');
const pids: number[] = [];
test.after(() => {
  for (const pid of pids) if (vmmAlive(pid)) process.kill(pid, 'SIGKILL');
  dir.remove();
});



// As the library waits for a booting agent: a refused hybrid vsock connection (nobody listens in
// the guest yet) means "again". After a restore, a connection closed by the guest does too: the
// guest's driver handles the transport reset event in a work item, and a connection it accepted
// before that ran is reset with the old ones (seen in L1: the first hello, ~0.6 s after the
// restore, was closed; the next one answered). `closed` counts those.
async function agentHello(uds: string, timeoutMs: number, closed = { count: 0 }): Promise<AgentClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await AgentClient.connect((signal) => dialHybridVsock(uds, AGENT_VSOCK_PORT, { signal }),
        { timeoutMs: Math.max(1, deadline - Date.now()), helloRetryMs: 2000 });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'AGENT_CLOSED') closed.count++;
      if ((code !== 'AGENT_CONNECT_FAILED' && code !== 'AGENT_CLOSED') || Date.now() + 25 >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

let base: Record<string, unknown> = {};
function config(name: string) {
  const run = join(dir.path, name);
  mkdirSync(run, { recursive: true });
  const paths = { console: join(run, 'console.log'), ctl: join(run, 'ctl.sock'), uds: join(run, 'agent.sock'), log: join(run, 'vmm.log'), cfg: join(run, 'vmm.json') };
  writeFileSync(paths.cfg, JSON.stringify({
    ...base, serialOutput: paths.console, controlSocket: paths.ctl, vsock: { guestCid: GUEST_CID, udsPath: paths.uds },
  }));
  return paths;
}

const snap = join(dir.path, 'snap');

test('a booted pod VM is snapshotted through the control socket once its agent answers', async () => {
  const kernel = await resolveKernel({});
  const initrd = await buildInitrd({ agentPath: nativeExecutable('vc-agent'), kernel });
  base = {
    kernel: kernel.kernelPath, initrd: initrd.path, cmdline: kvmCmdline(guestCmdline('snap-1')),
    vcpus: 1, memoryMiB: 256, rng: true, blocks: [{ readOnly: true }],
  };
  const p = config('source');
  const run = spawnSync(vcVmm, ['run', '--config', p.cfg, '--detach', '--log', p.log], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const pid = JSON.parse(run.stdout).pid;
  pids.push(pid);
  const t0 = performance.now();
  const client = await agentHello(p.uds, 60_000);
  console.log(`  cold boot: agent answered ${(performance.now() - t0).toFixed(0)} ms after vc-vmm run --detach returned`);
  const info = await client.guestInfo();
  assert.ok(info, 'guest_info answered');
  mkdirSync(snap);
  const reply = await vmmControl(p.ctl, { op: 'snapshot', dir: snap });
  assert.is(reply.ok, true, JSON.stringify(reply));
  assert.is(reply.state, 'stopped');
  console.log(`  capture: ${(reply.us.total / 1000).toFixed(0)} ms (${JSON.stringify(reply.us)}), state ${reply.bytes.state} bytes`);
  await waitFor('the snapshotted VMM to exit', () => !vmmAlive(pid), 10_000);
  await client.close().catch(() => undefined);
  assert.is(statSync(join(snap, 'memory')).size, 4096 + 256 * 1024 * 1024);
});

test('vc-vmm restore brings the pod back: its agent answers on the new vsock socket without a second boot', async () => {
  const p = config('restored');
  const t0 = performance.now();
  const r = spawnSync(vcVmm, ['restore', '--state', join(snap, 'state'), '--memory', join(snap, 'memory'),
    '--config', p.cfg, '--detach', '--log', p.log], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const restoredMs = performance.now() - t0;
  const pid = JSON.parse(r.stdout).pid;
  pids.push(pid);
  const closed = { count: 0 };
  const client = await agentHello(p.uds, 20_000, closed);
  const helloMs = performance.now() - t0;
  console.log(`  restore: vc-vmm restore --detach ${restoredMs.toFixed(0)} ms, agent hello answered after ` +
    `${helloMs.toFixed(0)} ms (${closed.count} connection(s) closed by the guest's transport reset first)`);
  // The agent either serves the request or asks for `restored` first (RESTORE_PENDING): both
  // are its answer over the restored vsock device.
  try {
    await client.guestInfo();
  } catch (err) {
    assert.match(String((err as Error).message), /RESTORE_PENDING|restored/);
  }
  const status = (await vmmControl(p.ctl, { op: 'status' })).status;
  assert.is(status.restoredFrom, join(snap, 'state'));
  assert.is(status.state, 'running');
  assert.not.match(existsSync(p.console) ? readFileSync(p.console, 'utf8') : '', /Linux version/, 'no second boot');
  await client.close().catch(() => undefined);
  await vmmControl(p.ctl, { op: 'stop' });
  await waitFor('the restored VMM to exit', () => !vmmAlive(pid), 10_000);
});

test.run();
