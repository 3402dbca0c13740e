// A Kubernetes pod's namespaces through containerd's CRI plugin and our shim: the containers of a
// pod share its IPC namespace and /dev/shm always, its pid namespace (with the pause process as
// PID 1) only with shareProcessNamespace (namespace_options.pid = POD). CRI writes the sandbox's
// namespaces into each member's OCI spec as /proc/<sandbox task pid>/ns/<type>; the shim maps them
// to the sandbox's container (ContainerConfig.joinNamespaces). Two pods, one VM at a time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { criProblem, startCriContainerd, type CriRig } from '../helpers/cri/rig.js';
import { containerConfig, podSandboxConfig } from '../helpers/cri/builders.js';
import type { PodSandboxConfig } from '../helpers/cri/types.js';
import { liveProcesses } from '../helpers/containerd-host.js';
import { testHypervisor } from '../helpers/hypervisor.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

const problem = criProblem();
const state = tempDir('vccrins');
let rig: CriRig | null = null;

const why = (what: string) => `${what}\ncontainerd log (end):\n${rig?.containerd.logs().slice(-6000)}`;
const must = <T>(p: Promise<T>): Promise<T> => p.catch((err: Error) => { throw new Error(why(err.message)); });
const vmms = () => liveProcesses().filter((p) => /qemu-system|vc-vmm/.test(p.argv[0] ?? '') && p.argv.some((a) => a.includes(state.path)));

const out = async (id: string, argv: string[]) => {
  const r = await must(rig!.cri.execSync(id, argv, 30));
  assert.is(r.exitCode, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
/** Every command line the container sees in its /proc. */
const commands = (id: string) => out(id, ['sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < $f; echo; done']);
const pid1 = async (id: string) => (await out(id, ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline'])).trim();
const ipcNs = (id: string) => out(id, ['readlink', '/proc/self/ns/ipc']);

interface MemberSpec { linux?: { namespaces?: Array<{ type: string; path?: string }> }; mounts?: Array<{ destination: string }> }
/** The OCI spec CRI gave the shim for a container (ContainerStatus verbose). */
const memberSpec = (r: { info: Record<string, string> }) => (JSON.parse(r.info.info ?? '{}') as { runtimeSpec?: MemberSpec }).runtimeSpec;

interface Pod { id: string; config: PodSandboxConfig; a: string; b: string }

/** A VM pod with two busybox sleeps, `sleep N` and `sleep N+1`. */
async function podWithTwo(name: string, share: boolean, n: number): Promise<Pod> {
  const config = podSandboxConfig({ name, logRoot: rig!.logRoot, shareProcessNamespace: share, annotations: { 'io.virtcontainers.pod.hypervisor': testHypervisor } });
  const id = await must(rig!.cri.runPodSandbox(config, 'virtc'));
  const start = async (cname: string, arg: number) => {
    const c = await must(rig!.cri.createContainer(id, containerConfig({ name: cname, image: rig!.images.busybox, command: ['sleep', String(arg)], sharePid: share }), config));
    await must(rig!.cri.startContainer(c));
    return c;
  };
  return { id, config, a: await start('a', n), b: await start('b', n + 1) };
}

async function removePod(pod: Pod): Promise<void> {
  await must(rig!.cri.stopPodSandbox(pod.id));
  await must(rig!.cri.removePodSandbox(pod.id));
  const end = Date.now() + 20_000;
  while (vmms().length > 0) {
    if (Date.now() > end) throw new Error(why('the pod\'s VMM did not exit'));
    await sleep(100);
  }
}

/** IPC namespace and /dev/shm: one for the pod's containers, whatever its pid mode. */
async function assertIpcShared(pod: Pod): Promise<void> {
  assert.is(await ipcNs(pod.a), await ipcNs(pod.b), 'one IPC namespace');
  await out(pod.a, ['sh', '-c', 'echo from-a > /dev/shm/probe']);
  assert.is(await out(pod.b, ['cat', '/dev/shm/probe']), 'from-a\n', 'one /dev/shm');
}

if (problem) {
  test('cri pod namespaces: skipped', () => { console.log(`\nSKIP cri-pod-namespaces: ${problem}`); });
} else {
  test.before(async () => {
    process.env.VC_ROOT = state.path;
    rig = await startCriContainerd({ name: 'crins', bridge: 'vccrins0', shimPath: [join(process.cwd(), 'bin')] });
  });
  test.after(async () => {
    await rig?.stop();
    state.remove();
  });

  test(`shareProcessNamespace (pid POD, ${testHypervisor}): the containers see each other and the pause process as PID 1; IPC and /dev/shm shared`, async () => {
    const pod = await podWithTwo('shared-pid', true, 2001);
    // What CRI asked of the shim: the sandbox task's namespaces by /proc path.
    const sandboxPid = (JSON.parse((await rig!.cri.podSandboxStatus(pod.id, true)).info.info ?? '{}') as { pid?: number }).pid;
    const spec = memberSpec(await rig!.cri.containerStatus(pod.a, true));
    const paths = Object.fromEntries((spec?.linux?.namespaces ?? []).map((n) => [n.type, n.path]));
    console.log(`  containerd's member namespaces: ${JSON.stringify(spec?.linux?.namespaces)} (sandbox task pid ${sandboxPid})`);
    assert.equal([paths.pid, paths.ipc], [`/proc/${sandboxPid}/ns/pid`, `/proc/${sandboxPid}/ns/ipc`]);

    const inA = await commands(pod.a);
    assert.match(inA, 'sleep 2002', inA);
    assert.match(await commands(pod.b), 'sleep 2001');
    for (const c of [pod.a, pod.b]) assert.match(await pid1(c), /^\/pause$|trap "exit 0"/, 'PID 1 is the pause process');
    await assertIpcShared(pod);
    await removePod(pod);
  });

  test('default (pid CONTAINER): each container is PID 1 of its own and sees only its processes; IPC and /dev/shm still shared', async () => {
    const pod = await podWithTwo('own-pid', false, 2011);
    const spec = memberSpec(await rig!.cri.containerStatus(pod.a, true));
    console.log(`  containerd's member namespaces: ${JSON.stringify(spec?.linux?.namespaces)}; /dev/shm: ${JSON.stringify(spec?.mounts?.find((m) => m.destination === '/dev/shm'))}`);
    assert.equal(spec?.linux?.namespaces?.find((n) => n.type === 'pid'), { type: 'pid' }, 'a new pid namespace');
    const inA = await commands(pod.a);
    assert.not.match(inA, 'sleep 2012', inA);
    assert.not.match(inA, /\/pause|trap "exit 0"/);
    assert.not.match(await commands(pod.b), 'sleep 2011');
    assert.equal([await pid1(pod.a), await pid1(pod.b)], ['sleep 2011', 'sleep 2012']);
    await assertIpcShared(pod);
    await removePod(pod);
  });

  test('stop() leaves nothing', async () => {
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
    assert.equal(vmms(), []);
  });
}

test.run();
