// CRI PortForward (kubectl port-forward) into a VM pod (handler virtc). containerd enters the
// sandbox's network namespace and dials localhost:PORT there; the containers are in the VM, so
// the shim's loopback forwarder (src/api/netns-loopback-forward.ts) redirects 127.0.0.1 in that
// namespace to its listener and takes each connection to the same port in the guest. The client
// is test/helpers/cri/port-forward.ts, proved against runc in cri-rig.test.ts. One pod.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bridgePorts, criProblem, startCriContainerd, type CriRig } from '../helpers/cri/rig.js';
import { containerConfig, podSandboxConfig } from '../helpers/cri/builders.js';
import type { PodSandboxConfig } from '../helpers/cri/types.js';
import { CRI_NAMESPACE } from '../helpers/cri/config.js';
import { httpGetThrough, openPortForward } from '../helpers/cri/port-forward.js';
import { liveProcesses } from '../helpers/containerd-host.js';
import { testHypervisor } from '../helpers/hypervisor.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

const HYPERVISOR_ANNOTATION = 'io.virtcontainers.pod.hypervisor';
const problem = criProblem();
const state = tempDir('vccripf');
let rig: CriRig | null = null;
let podId = '';
let podConfig: PodSandboxConfig;
let httpd = '';
let netns = '';
let bigSha = '';

const why = (what: string) => `${what}\ncontainerd log (end):\n${rig?.containerd.logs().slice(-6000)}`;
const must = <T>(p: Promise<T>): Promise<T> => p.catch((err: Error) => { throw new Error(why(err.message)); });
const podsDir = () => join(state.path, 'containerd', CRI_NAMESPACE, 'pods');
const pods = () => (existsSync(podsDir()) ? readdirSync(podsDir()).filter((n) => !n.startsWith('.')) : []);
const vmms = () => liveProcesses().filter((p) => /qemu-system|vc-vmm/.test(p.argv[0] ?? '') && p.argv.some((a) => a.includes(state.path)));
const shims = () => liveProcesses().filter((p) => p.argv.some((a) => a.endsWith('containerd-shim-virtc-v2')) && p.argv.includes(rig!.containerd.address));
/** `argv` in the sandbox's netns (its file is mounted in containerd's mount namespace, not ours). */
async function inNetns(argv: string[]): Promise<string> {
  const r = await rig!.containerd.exec(['nsenter', `--net=${netns}`, '--', ...argv]);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${netns}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The body of an HTTP response (after the blank line), as bytes. */
function body(response: Buffer): Buffer {
  const end = response.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : response.subarray(end + 4);
}

if (problem) {
  test('cri port-forward (virtc): skipped', () => { console.log(`\nSKIP cri-port-forward: ${problem}`); });
} else {
  test.before(async () => {
    process.env.VC_ROOT = state.path;  // the shim's pods go here (containerd passes its environment on)
    rig = await startCriContainerd({ name: 'cripf', shimPath: [join(process.cwd(), 'bin')] });
  });
  test.after(async () => {
    await rig?.stop();
    state.remove();
  });

  test(`PortForward to httpd in a VM pod (${testHypervisor}): the page, and a 1 MiB file byte for byte`, async () => {
    podConfig = podSandboxConfig({ name: 'pf-pod', logRoot: rig!.logRoot, annotations: { [HYPERVISOR_ANNOTATION]: testHypervisor } });
    podId = await must(rig!.cri.runPodSandbox(podConfig, 'virtc'));
    const { info } = await rig!.cri.podSandboxStatus(podId, true);
    const spec = (JSON.parse(info.info ?? '{}') as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } }).runtimeSpec;
    netns = spec?.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
    assert.ok(netns.startsWith('/'), `the sandbox's netns path from its spec: ${JSON.stringify(netns)}`);
    // The shim's forwarder: one REDIRECT rule in the sandbox's namespace, to its listener there.
    const rules = (await inNetns(['iptables', '-t', 'nat', '-S', 'OUTPUT'])).split('\n').filter((l) => l.includes('virtc-loopback-forward'));
    assert.equal(rules.length, 1, `one rule of ours: ${rules.join(' | ')}`);
    const listener = /--to-ports (\d+)/.exec(rules[0]!)?.[1];
    assert.ok((await inNetns(['ss', '-Hltn'])).includes(`127.0.0.1:${listener}`), `the listener on 127.0.0.1:${listener} in the netns`);

    const config = containerConfig({
      name: 'httpd', image: rig!.images.busybox,
      command: ['sh', '-c', 'mkdir -p /www && echo hello-from-the-vm > /www/index.html && head -c 1048576 /dev/urandom > /www/big && exec httpd -f -p 8080 -h /www'],
    });
    httpd = await must(rig!.cri.createContainer(podId, config, podConfig));
    await must(rig!.cri.startContainer(httpd));
    // A token is good once: each try asks PortForward for a new URL. httpd takes a moment to listen.
    let got = { response: '', error: '' };
    for (let i = 0; !got.response.includes('hello-from-the-vm'); i++) {
      if (i === 60) throw new Error(why(`httpd never answered through PortForward; last: ${JSON.stringify(got)}`));
      if (i > 0) await sleep(500);
      got = await must(httpGetThrough(await must(rig!.cri.portForward(podId, [8080])), 8080, '/index.html', 30_000));
    }
    assert.match(got.response, /^HTTP\/1\.[01] 200/);
    bigSha = (await must(rig!.cri.execSync(httpd, ['sha256sum', '/www/big'], 30))).stdout.split(' ')[0]!;
    const s = await must(openPortForward(await must(rig!.cri.portForward(podId, [8080])), [8080]));
    s.write('GET /big HTTP/1.0\r\n\r\n');
    await s.untilClosed(60_000);
    const big = body(s.data());
    assert.equal([big.length, sha256(big)], [1048576, bigSha], 'the file as the container has it');
  });

  test('two forwards at once, and one WebSocket with two ports', async () => {
    const [a, b] = await Promise.all([1, 2].map(async () => must(httpGetThrough(await must(rig!.cri.portForward(podId, [8080])), 8080, '/index.html', 30_000))));
    assert.ok(a!.response.includes('hello-from-the-vm') && b!.response.includes('hello-from-the-vm'), `${a!.response} | ${b!.response}`);
    const s = await must(openPortForward(await must(rig!.cri.portForward(podId, [8080, 8080])), [8080, 8080]));
    s.write('GET /index.html HTTP/1.0\r\n\r\n', 0);
    s.write('GET /big HTTP/1.0\r\n\r\n', 1);
    await s.untilClosed(60_000);
    assert.ok(s.data(0).toString().includes('hello-from-the-vm'), s.data(0).toString());
    assert.equal(sha256(body(s.data(1))), bigSha);
    assert.equal([s.error(0), s.error(1)], ['', '']);
  });

  test('a port nobody listens on in the VM: an error on its channel, the WebSocket closes; httpd still answers', async () => {
    const s = await must(openPortForward(await must(rig!.cri.portForward(podId, [8081])), [8081]));
    const t0 = Date.now();
    await s.untilClosed(20_000);
    assert.equal(s.data().length, 0);
    // containerd's dial of 127.0.0.1:8081 reaches the forwarder, which resets it when the guest refuses.
    assert.match(s.error(), /error forwarding port 8081 to pod/, s.error());
    assert.match(s.error(), /reset|refused/, s.error());
    console.log(`  refused port: closed after ${Date.now() - t0} ms; error channel: ${s.error()}`);
    const again = await must(httpGetThrough(await must(rig!.cri.portForward(podId, [8080])), 8080, '/index.html', 30_000));
    assert.ok(again.response.includes('hello-from-the-vm'), again.response);
  });

  test('StopPodSandbox, RemovePodSandbox: no VM, no shim (nor its listener), no pod state', async () => {
    await must(rig!.cri.stopPodSandbox(podId));
    await must(rig!.cri.removePodSandbox(podId));
    assert.equal(await rig!.cri.listPodSandbox(), []);
    const end = Date.now() + 20_000;
    while (vmms().length + shims().length > 0) {
      if (Date.now() > end) throw new Error(why(`still running: ${JSON.stringify([...vmms(), ...shims()].map((p) => p.argv.slice(0, 3)))}`));
      await sleep(100);
    }
    assert.equal(pods(), []);
    assert.equal(bridgePorts(rig!.bridge), []);
    assert.not.equal((await rig!.containerd.exec(['test', '-e', netns])).code, 0, `CRI removed the netns ${netns}`);
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
  });
}

test.run();
