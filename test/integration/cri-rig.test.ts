// The CRI test rig (test/helpers/cri/) proved with runc, the default handler "": containerd's CRI
// plugin driven by our own gRPC client the way the kubelet drives it — a pod sandbox networked by
// CNI in this test's network namespace, a container in it, ExecSync, the CRI log file, and a
// teardown that leaves nothing. If these pass, a failure in test/integration/cri.test.ts (the same
// flow on our shim) is the shim's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bridgePorts, criProblem, startCriContainerd, type CriRig } from '../helpers/cri/rig.js';
import { containerConfig, parseCriLog, podSandboxConfig } from '../helpers/cri/builders.js';
import type { PodSandboxConfig } from '../helpers/cri/types.js';
import { openStream, streamExec } from '../helpers/cri/stream.js';
import { httpGetThrough, openPortForward } from '../helpers/cri/port-forward.js';
import { sleep } from '../helpers/wait.js';

const problem = criProblem();
let rig: CriRig | null = null;
let podId = '';
let podConfig: PodSandboxConfig;
let sleeper = '';

const log = () => `\ncontainerd log (end):\n${rig?.containerd.logs().slice(-3000)}`;
/** The assertion message: what failed plus containerd's log, which says why. */
const why = (what: string) => `${what}${log()}`;
/** `p`, or a rejection whose message carries containerd's log. */
const must = <T>(p: Promise<T>): Promise<T> => p.catch((err: Error) => { throw new Error(why(err.message)); });

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(why(`timed out after ${timeoutMs} ms waiting for ${what}`));
    await sleep(50);
  }
}

if (problem) {
  test('cri rig: skipped', () => { console.log(`\nSKIP cri-rig: ${problem}`); });
} else {
  test.before(async () => {
    rig = await startCriContainerd({ name: 'cri-rig' });
  });
  test.after(async () => { await rig?.stop(); });

  test('Version answers runtime.v1 from containerd', async () => {
    const v = await rig!.cri.version();
    assert.equal(v.runtimeName, 'containerd');
    assert.equal(v.runtimeApiVersion, 'v1');
    assert.match(v.runtimeVersion, /^v?1\.\d+/);
  });

  test('the imported pause and busybox images are what CRI sees', async () => {
    const tags = (await rig!.cri.listImages()).flatMap((i) => i.repoTags);
    assert.ok(tags.includes(rig!.images.pause) && tags.includes(rig!.images.busybox), `CRI lists ${JSON.stringify(tags)}`);
    assert.equal(await rig!.cri.imageStatus('docker.io/library/not-here:none'), null);
    const busybox = await rig!.cri.imageStatus(rig!.images.busybox);
    assert.equal(await rig!.cri.ensureImage(rig!.images.busybox), busybox!.id);
    // There is no registry (nor any network) here: a pull fails, and says where it tried.
    const pull = await rig!.cri.pullImage('docker.io/library/not-here:none').then(() => 'pulled', (err: Error) => err.message);
    assert.match(pull, /failed to pull.*not-here/);
  });

  test('RunPodSandbox (runc): ready, with an IP from our CNI subnet, its veth on our bridge', async () => {
    podConfig = podSandboxConfig({ name: 'rig-pod', logRoot: rig!.logRoot });
    podId = await must(rig!.cri.runPodSandbox(podConfig, ''));
    const { status } = await rig!.cri.podSandboxStatus(podId);
    assert.equal(status.state, 'SANDBOX_READY');
    assert.equal(status.metadata.name, 'rig-pod');
    assert.match(status.network?.ip ?? '', /^10\.232\.0\.\d+$/, `the pod's IP ${status.network?.ip}`);
    const bridge = bridgePorts(rig!.bridge);
    assert.equal(bridge.length, 1, `one veth on ${rig!.bridge}: ${bridge.join(', ')}`);
    const listed = await rig!.cri.listPodSandbox();
    assert.equal(listed.map((p) => p.id), [podId]);
  });

  test('CreateContainer + StartContainer: a busybox sleep runs in the pod', async () => {
    const config = containerConfig({ name: 'sleeper', image: rig!.images.busybox, command: ['sleep', '1000'] });
    sleeper = await must(rig!.cri.createContainer(podId, config, podConfig));
    assert.equal((await rig!.cri.containerStatus(sleeper)).status.state, 'CONTAINER_CREATED');
    await must(rig!.cri.startContainer(sleeper));
    const { status } = await rig!.cri.containerStatus(sleeper);
    assert.equal(status.state, 'CONTAINER_RUNNING');
    assert.equal(status.logPath, join(podConfig.logDirectory!, 'sleeper.log'));
    const listed = await rig!.cri.listContainers({ podSandboxId: podId });
    assert.equal(listed.map((c) => [c.id, c.state]), [[sleeper, 'CONTAINER_RUNNING']]);
  });

  test('ExecSync: stdout and exit code; a nonzero exit; the pod network from inside', async () => {
    const hi = await rig!.cri.execSync(sleeper, ['echo', 'hi'], 10);
    assert.equal(hi, { stdout: 'hi\n', stderr: '', exitCode: 0 });
    const three = await rig!.cri.execSync(sleeper, ['sh', '-c', 'echo oops >&2; exit 3'], 10);
    assert.equal(three, { stdout: '', stderr: 'oops\n', exitCode: 3 });
    const { status } = await rig!.cri.podSandboxStatus(podId);
    const addr = await rig!.cri.execSync(sleeper, ['ip', '-4', '-o', 'addr', 'show', 'eth0'], 10);
    assert.ok(addr.stdout.includes(`inet ${status.network!.ip}/24`), `eth0 in the pod: ${addr.stdout}`);
    const lo = await rig!.cri.execSync(sleeper, ['ip', '-o', 'link', 'show', 'lo'], 10);
    assert.match(lo.stdout, /[<,]UP[,>]/, 'CRI brought lo up in the pod');
  });

  test('streaming Exec over WebSocket (v4.channel.k8s.io): stdin in, stdout and stderr apart, exit 4', async () => {
    const url = await must(rig!.cri.exec({ containerId: sleeper, cmd: ['sh', '-c', 'read x; echo got $x; echo err >&2; exit 4'], stdin: true, stdout: true, stderr: true }));
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${rig!.streamPort}/exec/`));
    const r = await must(streamExec(url, { stdin: 'hi\n' }));
    assert.equal([r.protocol, r.stdout, r.stderr, r.exitCode], ['v4.channel.k8s.io', 'got hi\n', 'err\n', 4], `channel 3: ${r.statusText}`);
    const ok = await must(streamExec(await rig!.cri.exec({ containerId: sleeper, cmd: ['echo', 'fine'], stdout: true, stderr: true })));
    assert.equal([ok.stdout, ok.exitCode], ['fine\n', 0], `channel 3: ${ok.statusText}`);
    // A token is good once: the streaming server forgets it when it is used.
    const again = await openStream(url).then((st) => { st.close(); return 'upgraded'; }, (e: Error) => e.message);
    assert.match(again, /not 101/);
  });

  test('Attach to a running container that echoes its stdin; detaching leaves it running', async () => {
    const config = containerConfig({ name: 'echoer', image: rig!.images.busybox, stdin: true, command: ['sh', '-c', 'while read line; do echo "echo:$line"; done'] });
    const id = await must(rig!.cri.createContainer(podId, config, podConfig));
    await must(rig!.cri.startContainer(id));
    const url = await must(rig!.cri.attach({ containerId: id, stdin: true, stdout: true, stderr: true }));
    assert.match(url, /\/attach\//);
    const s = await must(openStream(url));
    s.write('one\n');
    await must(s.waitFor('stdout', 'echo:one\n'));
    s.write('two\n');
    await must(s.waitFor('stdout', 'echo:two\n'));
    assert.equal(s.stdout, 'echo:one\necho:two\n');
    s.close();
    await s.done.catch(() => {});
    await sleep(300);
    const st = (await rig!.cri.containerStatus(id)).status;
    assert.equal(st.state, 'CONTAINER_RUNNING', why(`detaching does not stop the container (exit ${st.exitCode} ${st.reason}; sandbox ${(await rig!.cri.podSandboxStatus(podId)).status.state})`));
    await rig!.cri.stopContainer(id, 0);
    await rig!.cri.removeContainer(id);
  });

  test('PortForward over WebSocket: httpd in the pod answers through it; a port nobody serves says so on its error channel', async () => {
    const config = containerConfig({ name: 'httpd', image: rig!.images.busybox, command: ['sh', '-c', 'mkdir -p /www && echo hello-through-port-forward > /www/index.html && exec httpd -f -p 8080 -h /www'] });
    const id = await must(rig!.cri.createContainer(podId, config, podConfig));
    await must(rig!.cri.startContainer(id));
    // A token is good once: each try asks PortForward for a new URL. httpd takes a moment to listen.
    let got = { response: '', error: '' };
    await until('httpd to answer through PortForward', async () => {
      got = await must(httpGetThrough(await must(rig!.cri.portForward(podId, [8080])), 8080, '/index.html'));
      return got.response.includes('hello-through-port-forward');
    }, 10_000);
    assert.match(got.response, /^HTTP\/1\.[01] 200/, got.response);
    const s = await must(openPortForward(await rig!.cri.portForward(podId, [8081]), [8081]));
    await s.untilClosed();
    assert.equal(s.data().length, 0);
    assert.match(s.error(), /error forwarding port 8081 to pod .*connection refused/, s.error());
    await rig!.cri.stopContainer(id, 0);
    await rig!.cri.removeContainer(id);
  });

  test("a container's output lands at its LogPath in the CRI format; exit code and reason", async () => {
    const config = containerConfig({ name: 'printer', image: rig!.images.busybox, command: ['sh', '-c', 'echo out-line; echo err-line >&2; printf partial; exit 5'] });
    const id = await rig!.cri.createContainer(podId, config, podConfig);
    await rig!.cri.startContainer(id);
    await until('printer to exit', async () => (await rig!.cri.containerStatus(id)).status.state === 'CONTAINER_EXITED', 20_000);
    const { status } = await rig!.cri.containerStatus(id);
    assert.equal([status.exitCode, status.reason], [5, 'Error']);
    const lines = parseCriLog(readFileSync(status.logPath, 'utf8'));
    const byStream = (s: string) => lines.filter((l) => l.stream === s).map((l) => `${l.tag} ${l.content}`);
    assert.equal(byStream('stdout'), ['F out-line', 'P partial']);
    assert.equal(byStream('stderr'), ['F err-line']);
    await rig!.cri.removeContainer(id);
    assert.equal(existsSync(status.logPath), true, 'RemoveContainer leaves the log (the kubelet removes it)');
  });

  test('StopPodSandbox stops its containers; RemovePodSandbox removes the pod', async () => {
    await rig!.cri.stopPodSandbox(podId);
    assert.equal((await rig!.cri.podSandboxStatus(podId)).status.state, 'SANDBOX_NOTREADY');
    assert.equal((await rig!.cri.containerStatus(sleeper)).status.state, 'CONTAINER_EXITED');
    assert.equal(bridgePorts(rig!.bridge), [], 'CNI DEL took the veth off the bridge');
    await rig!.cri.removePodSandbox(podId);
    assert.equal(await rig!.cri.listPodSandbox(), []);
    assert.equal(await rig!.cri.listContainers(), []);
    const gone = await rig!.cri.podSandboxStatus(podId).then(() => 'still there', (err: Error) => err.message);
    assert.match(gone, /NOT_FOUND|not found/);
  });

  test('stop() leaves nothing: no process, cgroup, mount, netns, bridge, chain or directory', async () => {
    // A second pod left running, so stop() has something to tear down.
    const cfg = podSandboxConfig({ name: 'left-running', logRoot: rig!.logRoot, portMappings: [{ containerPort: 80, hostPort: 18080 }] });
    const id = await rig!.cri.runPodSandbox(cfg, '');
    await rig!.cri.startContainer(await rig!.cri.createContainer(id, containerConfig({ name: 'sleeper', image: rig!.images.busybox, command: ['sleep', '1000'] }), cfg));
    assert.ok(rig!.leftovers().length > 0, 'leftovers() sees the running rig');
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
  });
}

test.run();
