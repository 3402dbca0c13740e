// vc-test: either-lane
// Crash-only proof for virtc-runtime (issue 16), on real VM pods (QEMU here), driven as conmon
// drives runc (test/helpers/oci-runtime.ts):
// - `create` killed (SIGKILL, VC_TEST_CRASH_AT=runtimeCreate:k, src/crash-points.ts) after each
//   thing it makes: the record, the holder (in a new network namespace pinned under the record:
//   the spec asks for one without a path), the holder's pid recorded, the hooks, the container,
//   the pid file. After each kill the engine's answer to a failed create — `delete --force` —
//   leaves nothing: no record, holder, VMM, pod directory or mount. The first create that runs to
//   its end (k past the last step) makes the container the next tests use. At least 4 steps must
//   have been killed, so a crash hook that never fires cannot pass.
// - The daemon SIGKILLed under a running container: its holder exits 255, `state` says stopped,
//   `delete` (no daemon) removes the pod and the record.
// - The daemon killed in the middle of a create's pod boot (the API's startPod crash point just
//   after the VMM is up, before the pod record names it; the daemon inherits the create's
//   environment): the create fails, `delete --force` with no daemon removes the VM and the pin.
// - Then a create on the same root starts a new daemon and the container runs to its exit code.
// Boots: 3 in the first test (the two steps after the pod is made, and the create that completes),
// a partial one and a full one after: ≈ 40 s here. The tests run in order on one root and id.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { daemonSocket, netnsPin, podsRoot, processAlive, recordDir } from '../../src/oci-runtime/state-store.js';
import { testHypervisor } from '../helpers/hypervisor.js';
import { processesNaming } from '../helpers/leaks.js';
import { report, RuntimeRig, type Monitored } from '../helpers/oci-runtime.js';
import { teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const tmp = tempDir('vcrc');
const rig = new RuntimeRig(tmp.path);
const { root } = rig;
const pods = podsRoot(root);
const id = 'crashy';
// sleep: the container the create that completes makes is the running one the daemon is killed under.
const bundle = rig.bundleFor('bc', ['sleep', '1000']);

function ok(args: string[]): string {
  const r = rig.cli(args);
  assert.is(r.status, 0, `virtc-runtime ${args.join(' ')}: exit ${r.status}, stderr ${JSON.stringify(r.stderr)}\ndaemon log: ${rig.readLog()}`);
  return r.stdout;
}

/** Gone, or a zombie: a detached daemon's reaper here (pid 1) may take a while. */
function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

const status = (cid: string): unknown => (JSON.parse(ok(['state', cid])) as { status: unknown }).status;

/** Mount points under the root (and the pods root, when that is elsewhere), from our mount namespace. */
function mountsUnder(): string[] {
  const under = (p: string): boolean => [root, pods].some((dir) => p === dir || p.startsWith(`${dir}/`));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter(under);
}

function holdersOf(cid: string): number[] {
  return processesNaming(daemonSocket(root)).filter(({ argv }) => argv.some((a, i) => a === '--id' && argv[i + 1] === cid)).map((p) => p.pid);
}

/** What is left of container `cid` on the host; empty: nothing. */
function remains(cid: string): string[] {
  const found: string[] = [];
  if (existsSync(recordDir(root, cid))) found.push(`record directory ${recordDir(root, cid)}`);
  for (const pid of holdersOf(cid)) found.push(`holder process ${pid}`);
  for (const pid of vmmProcessesUnder(pods)) found.push(`VMM process ${pid}`);
  const podDirs = existsSync(join(pods, 'pods')) ? readdirSync(join(pods, 'pods')) : [];
  for (const name of podDirs) found.push(`pod directory ${join(pods, 'pods', name)}`);
  for (const mount of mountsUnder()) found.push(`mount ${mount}`);
  return found;
}

async function nothingLeft(cid: string, what: string): Promise<void> {
  // The holder leaves on the daemon's ERROR or its closed connection: a moment after the delete.
  try {
    await waitFor(`${what}: nothing left`, () => remains(cid).length === 0, 10_000);
  } catch {
    assert.equal(remains(cid), [], `${what}: left behind\ndaemon log: ${rig.readLog()}`);
  }
}

/** What an engine runs after a failed create; a create or delete under way answers "try again". */
async function deleteForce(cid: string, what: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = rig.cli(['delete', '--force', cid]);
    if (r.status === 0) return;
    if (!/try again/.test(r.stderr) || attempt === 20) assert.unreachable(`${what}: delete --force: exit ${r.status}: ${r.stderr}\ndaemon log: ${rig.readLog()}`);
    await sleep(250);
  }
}

async function createEnded(m: Monitored): Promise<number> {
  await waitFor('create to end', () => report(m, 'create') !== undefined, 180_000);
  return report(m, 'create')!.create as number;
}

let running: Monitored | undefined;

test('create killed at each of its steps: delete --force leaves nothing; the create that runs to its end works', async () => {
  // One daemon for all the steps (the next test kills it): an idle daemon's leaving would close
  // the connection of a holder the delete forgot, and hide that.
  let daemon = 0;
  const killed: string[] = [];
  for (let k = 1; k <= 20; k++) {
    const m = rig.monitorCreate(id, bundle, { extraEnv: { VC_TEST_CRASH_AT: `runtimeCreate:${k}`, VIRTC_RUNTIME_IDLE_MS: '600000' } });
    const code = await createEnded(m);
    if (k === 1) daemon = rig.daemonPid();
    if (code === 0) {
      running = m;
      break;
    }
    const pattern = new RegExp(`VC_TEST_CRASH_AT: killing process \\d+ at runtimeCreate step ${k} \\(([^)]+)\\)`);
    try {
      await waitFor(`the create's stderr to name step ${k}`, () => pattern.test(m.stderr()), 5000);
    } catch {
      assert.unreachable(`runtimeCreate:${k}: create exit ${code}, stderr ${JSON.stringify(m.stderr())}\ndaemon log: ${rig.readLog()}`);
    }
    assert.is(code, -9, `runtimeCreate:${k}: killed by SIGKILL`);
    const step = pattern.exec(m.stderr())![1]!;
    killed.push(step);
    if (step === 'holder-spawned') {
      // The spec's new network namespace is pinned: the mount the delete must take away.
      assert.ok(mountsUnder().includes(netnsPin(root, id)), `the netns pin is mounted at ${step}: ${JSON.stringify(mountsUnder())}`);
    }
    if (step === 'container-made') assert.is(vmmProcessesUnder(pods).length, 1, 'the pod runs when the create dies after make');
    await deleteForce(id, `killed at ${step}`);
    await nothingLeft(id, `create killed at step ${k} (${step}), then delete --force`);
  }
  assert.is(rig.daemonPid(), daemon, 'one daemon served every step');
  console.log(`# create killed at: ${killed.join(', ')}`);
  assert.ok(running, `a create ran to its end within 20 steps (killed at: ${killed.join(', ')})`);
  assert.ok(killed.length >= 4, `create killed at 4 steps at least: ${killed.join(', ')}`);
  for (const step of ['record-made', 'holder-spawned', 'container-made']) assert.ok(killed.includes(step), `killed at ${step}`);
  assert.equal(report(running, 'create'), { create: 0 });
  await waitFor('the pid file', () => report(running!, 'holder') !== undefined, 5000);
  assert.is(status(id), 'created');
});

test('the daemon killed under a running container: its holder exits 255, state says stopped, delete removes the pod', async () => {
  assert.ok(running, 'the previous test left a created container');
  ok(['start', id]);
  assert.is(status(id), 'running');
  const daemon = rig.daemonPid();
  assert.ok(daemon > 0 && processAlive(daemon), `daemon.pid names a live daemon: ${daemon}`);
  process.kill(daemon, 'SIGKILL');
  await waitFor('the holder to exit', () => report(running!, 'exit') !== undefined || report(running!, 'signal') !== undefined, 10_000);
  assert.equal(report(running, 'exit'), { exit: 255 });
  assert.is(status(id), 'stopped');
  assert.is(vmmProcessesUnder(pods).length, 1, 'the VM outlives the daemon until the delete');
  ok(['delete', id]);
  await nothingLeft(id, 'delete after the daemon was killed');
});

// The startPod step just after the VMM is up and before the pod record names it: QEMU serving its monitor
// (qemu), the built-in VMM detached (kvm; its step 3 is its cgroup).
const VMM_UP_STEP = testHypervisor === 'kvm' ? 4 : 3;

test('the daemon killed while booting a create\'s pod: the create fails, delete --force (no daemon) removes the VM and the pin', async () => {
  const before = rig.daemonPid();
  // No daemon runs (the last one was killed): this create starts one, with the kill in its environment.
  const m = rig.monitorCreate(id, bundle, { extraEnv: { VC_TEST_CRASH_AT: `startPod:${VMM_UP_STEP}` } });
  assert.is(await createEnded(m), 1, `create fails when its daemon dies: ${m.stderr()}`);
  await waitFor('the create\'s error', () => /make: the daemon closed the connection without an answer/.test(m.stderr()), 5000)
    .catch(() => assert.unreachable(`the create's error names the lost daemon: ${JSON.stringify(m.stderr())}`));
  const daemon = rig.daemonPid();
  assert.ok(daemon > 0 && daemon !== before, `a new daemon started (${daemon}, was ${before})`);
  await waitFor(`the new daemon ${daemon} to die`, () => dead(daemon), 5000);
  assert.is(vmmProcessesUnder(pods).length, 1, 'the VMM, detached before the kill, runs on');
  assert.ok(mountsUnder().includes(netnsPin(root, id)), 'the netns pin is left mounted');
  assert.is(status(id), 'creating');
  await deleteForce(id, `daemon killed at startPod:${VMM_UP_STEP}`);
  await nothingLeft(id, `daemon killed at startPod:${VMM_UP_STEP}, then delete --force`);
});

test('after it all, a create on the same root starts a new daemon and its container runs to its exit code', async () => {
  const before = rig.daemonPid();
  const m = rig.monitorCreate(id, rig.bundleFor('again', ['sh', '-c', 'echo again; exit 4']));
  assert.is(await createEnded(m), 0, `${m.stderr()}\ndaemon log: ${rig.readLog()}`);
  const daemon = rig.daemonPid();
  assert.ok(daemon !== before && processAlive(daemon), `a new daemon serves the root: ${daemon}`);
  ok(['start', id]);
  await waitFor('the holder to exit', () => report(m, 'exit') !== undefined || report(m, 'signal') !== undefined, 30_000);
  assert.equal(report(m, 'exit'), { exit: 4 });
  await waitFor('the output', () => m.stdout() === 'again\n', 5000);
  ok(['delete', id]);
  await nothingLeft(id, 'the last delete');
  await waitFor('the daemon to leave', () => dead(daemon), 15_000);
});

test.after(async () => {
  const daemon = rig.daemonPid();
  if (daemon > 0 && processAlive(daemon)) process.kill(daemon, 'SIGKILL');
  for (const pid of holdersOf(id)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await teardownRoot(pods);
  for (const mount of mountsUnder().reverse()) {
    console.log(`# unmounting a leftover ${mount}`);
    spawnSync('umount', ['-l', mount]);
  }
  tmp.remove();
});

test.run();
