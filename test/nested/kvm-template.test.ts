// Pod templates end to end on the built-in VMM, inside the nested-KVM harness (docs/snapshots.md):
// a kvm pod booted and snapshotted into a template, then two pods restored from it — each answers
// exec, with its own host name, machine id, random bytes and the host's clock (the agent's
// `restored` re-seeding), and the pod's status shows its restore epoch. A cold-booted pod in the
// same L1 gives the figure a restored start is compared with (docs/snapshots.md, measured numbers).
// The second restored pod's `vc-vmm restore` runs in a spare of `vc-vmm launcher` (VC_VMM_LAUNCHER),
// the same launch path cold pods take. A template made on the bridge network gives each pod its
// own MAC and address (in the test's own network namespace: traffic stays inside it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { enterPod } from '../../src/api/enter.js';
import { createPod, deletePod, startPod, stopPod } from '../../src/api/pod.js';
import { podStatus } from '../../src/api/pod-status.js';
import { createTemplate, deleteTemplate, listTemplates, verifyTemplate } from '../../src/api/template.js';
import { readAll, teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { nativeExecutable } from '../../src/native.js';
import { LAUNCHER_ENV } from '../../src/hypervisor/kvm/launcher.js';
import { childrenOf } from '../helpers/children.js';
import { hostNamespaceProblem } from '../helpers/network.js';
import { TemplateStore } from '../../src/store/template-store.js';

/** The templates' own records (the MACs of their NICs are not in listTemplates). */
async function readTemplateRecords(stateRoot: string) {
  const store = new TemplateStore(stateRoot);
  return Promise.all((await listTemplates({ root: stateRoot })).map((t) => store.read(t.name)));
}

const tmp = tempDir('vct');
const root = tmp.path;
// Each progress line with the time since the call began (mark is reset before each call).
let mark = Date.now();
const options = { root, onProgress: (line: string) => console.log(`  +${Date.now() - mark} ms ${line}`) };
let launcher: ChildProcess | undefined;
// Outside the state root: the launcher and its spares are not the pods' VMMs.
const launcherDir = tempDir('vctl');
const launcherSocket = join(launcherDir.path, 'launcher.sock');

test.after(async () => {
  delete process.env[LAUNCHER_ENV];
  launcher?.kill('SIGTERM');
  launcherDir.remove();
  await teardownRoot(root);
  tmp.remove();
});

/** What a guest tells about its identity: host name, machine id, 16 random bytes, its clock. */
async function identity(id: string): Promise<{ hostname: string; machineId: string; random: string; clock: number }> {
  const proc = await enterPod(id, ['sh', '-c', 'hostname; cat /etc/machine-id; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; date +%s'], options);
  const [out, status] = await Promise.all([readAll(proc.stdout), proc.wait()]);
  assert.equal(status, { exitCode: 0, signal: null }, `exec in ${id}: ${out}`);
  const [hostname, machineId, random, clock] = out.trim().split('\n');
  return { hostname: hostname!, machineId: machineId!, random: random!, clock: Number(clock) };
}

test('a template from a kvm pod; two pods restored from it run exec with their own identities', async () => {
  let t0 = mark = Date.now();
  const info = await createTemplate({ name: 'base', hypervisor: 'kvm', vcpus: 1, memoryMiB: 256, network: 'none' }, options);
  console.log(`  createTemplate: ${Date.now() - t0} ms; state ${info.bytes.state} B, memory ${info.bytes.memory} B`);
  assert.is(info.bytes.memory, 4096 + 256 * 1024 * 1024, 'the memory file is a header page and all of RAM');
  assert.ok(existsSync(join(root, 'templates', 'base', 'state')) && existsSync(join(root, 'templates', 'base', 'memory')));
  assert.equal(vmmProcessesUnder(root), [], 'the template\'s VMM is gone after the snapshot');

  // A cold boot of the same machine, for comparison.
  await createPod({ id: 'cold-1', hypervisor: 'kvm', vcpus: 1, memoryMiB: 256, network: 'none' }, options);
  t0 = mark = Date.now();
  await startPod('cold-1', options);
  const coldMs = Date.now() - t0;
  console.log(`  startPod cold-1 (cold boot): ${coldMs} ms`);
  await stopPod('cold-1', options);
  await deletePod('cold-1', options);

  const seen = [];
  for (const id of ['warm-1', 'warm-2']) {
    let spares: number[] = [];
    if (id === 'warm-2') {
      launcher = spawn(nativeExecutable('vc-vmm'), ['launcher', '--socket', launcherSocket, '--spares', '1'], { stdio: 'ignore' });
      const deadline = Date.now() + 30_000;
      while (childrenOf(launcher.pid!).length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      spares = childrenOf(launcher.pid!);
      assert.is(spares.length, 1, 'the launcher has its spare');
      process.env[LAUNCHER_ENV] = launcherSocket;
    }
    await createPod({ id, template: 'base', network: 'none' }, options);
    t0 = mark = Date.now();
    await startPod(id, options);
    const warmMs = Date.now() - t0;
    console.log(`  startPod ${id} (restore, restored, network): ${warmMs} ms, ${(warmMs / coldMs).toFixed(3)} of the cold boot`);
    assert.ok(warmMs < coldMs, `a restored start (${warmMs} ms) is faster than a cold boot (${coldMs} ms)`);
    if (id === 'warm-2') {
      assert.is(launcher!.exitCode, null, 'the launcher runs on');
      assert.not.ok(childrenOf(launcher!.pid!).includes(spares[0]!), 'the launcher\'s spare was taken: it ran the vc-vmm restore');
    }
    const status = await podStatus(id, options);
    assert.equal(status.template, { name: 'base', epoch: 1 }, 'the first start of a template pod is restore epoch 1');
    const who = await identity(id);
    assert.is(who.hostname, id, 'the restored guest has the pod\'s host name, not the template\'s');
    assert.match(who.machineId, /^[0-9a-f]{32}$/);
    assert.match(who.random, /^[0-9a-f]{32}$/);
    assert.ok(Math.abs(who.clock - Date.now() / 1000) < 30, `the guest clock is the host's (${who.clock})`);
    seen.push(who);
  }
  assert.is.not(seen[0]!.machineId, seen[1]!.machineId, 'each restored pod has its own machine id');
  assert.is.not(seen[0]!.random, seen[1]!.random, 'each restored pod draws its own random bytes');
  assert.equal((await listTemplates(options))[0]!.usedBy, ['warm-1', 'warm-2']);
  // Two pods have run on its memory file: it is still the snapshot's, every byte (MAP_PRIVATE).
  const t1 = Date.now();
  const check = await verifyTemplate('base', options);
  console.log(`  verifyTemplate: ${Date.now() - t1} ms (${check.ramCrc})`);
  assert.equal({ vcpus: check.vcpus, ramBytes: check.ramBytes }, { vcpus: 1, ramBytes: 256 * 1024 * 1024 });

  for (const id of ['warm-1', 'warm-2']) {
    await stopPod(id, options);
    await deletePod(id, options);
  }
  await deleteTemplate('base', options);
  assert.equal(await listTemplates(options), []);
  assert.equal(vmmProcessesUnder(root), []);
});

test('a template made on the bridge network: each pod from it has its own MAC and address and reaches the bridge and the other', async () => {
  const problem = hostNamespaceProblem();
  if (problem) {
    console.log(`SKIP template on the bridge network: ${problem}`);
    return;
  }
  mark = Date.now();
  await createTemplate({ name: 'net', hypervisor: 'kvm', vcpus: 1, memoryMiB: 256, network: 'bridge' }, options);
  const [template] = (await readTemplateRecords(root)).filter((t) => t.name === 'net');
  assert.is(template?.nics.length, 1, 'the template has the NIC of the pod it was made from');
  const seen: { mac: string; address: string }[] = [];
  for (const id of ['net-1', 'net-2']) {
    await createPod({ id, template: 'net' }, options);
    mark = Date.now();
    const status = await startPod(id, options);
    const nic = status.network.interfaces[0]!;
    const address = nic.addresses[0]!.split('/')[0]!;
    // What the guest kernel has now: `restored` gave eth0 the pod's MAC, configure_network (sent
    // right behind it on the same connection) its address.
    const proc = await enterPod(id, ['sh', '-c', 'cat /sys/class/net/eth0/address; ip -o -4 addr show dev eth0; ping -c 1 -W 10 10.231.0.1 >/dev/null && echo gateway-ok'], options);
    const [out, exit] = await Promise.all([readAll(proc.stdout), proc.wait()]);
    assert.equal(exit, { exitCode: 0, signal: null }, `exec in ${id}: ${out}`);
    const [mac, addrLine, gateway] = out.trim().split('\n');
    assert.is(mac, nic.mac.toLowerCase(), `${id}: eth0 has the pod's MAC`);
    assert.is.not(mac, template!.nics[0]!.mac.toLowerCase(), `${id}: not the template's MAC`);
    assert.ok(addrLine?.includes(` ${nic.addresses[0]} `), `${id}: eth0 has ${nic.addresses[0]}: ${addrLine}`);
    assert.is(gateway, 'gateway-ok', `${id} reaches the bridge's gateway`);
    seen.push({ mac: mac!, address });
  }
  assert.is.not(seen[0]!.mac, seen[1]!.mac);
  assert.is.not(seen[0]!.address, seen[1]!.address);
  const ping = await enterPod('net-2', ['ping', '-c', '1', '-W', '10', seen[0]!.address], options);
  const [pingOut, pingExit] = await Promise.all([readAll(ping.stdout), ping.wait()]);
  assert.equal(pingExit, { exitCode: 0, signal: null }, `net-2 pings net-1 at ${seen[0]!.address}: ${pingOut}`);
  for (const id of ['net-1', 'net-2']) {
    await stopPod(id, options);
    await deletePod(id, options);
  }
  await deleteTemplate('net', options);
  assert.equal(vmmProcessesUnder(root), []);
});

test.run();
