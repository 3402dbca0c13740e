// vc-test: judges-speed
// A kubelet's probes against a VM pod through CRI (handler virtc): an httpd container answers on
// the pod IP from the test's namespace while ExecSync runs every second for a minute and an attach
// stream stays open (a line through it every 10 s) — no failure,
// and no slowdown: the median of every later 10-second window stays within twice the median of
// the first 5 probes (single calls are not judged: this 2-core host has hiccups of its own).
// VC_CRI_SOAK_MS changes the length.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { get } from 'node:http';
import { join } from 'node:path';
import { criProblem, startCriContainerd, type CriRig } from '../helpers/cri/rig.js';
import { containerConfig, podSandboxConfig } from '../helpers/cri/builders.js';
import { openStream } from '../helpers/cri/stream.js';
import { testHypervisor } from '../helpers/hypervisor.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';

const SOAK_MS = Number(process.env.VC_CRI_SOAK_MS ?? 60_000);
const median = (list: number[]): number => [...list].sort((a, b) => a - b)[list.length >> 1]!;
const problem = criProblem();
const state = tempDir('vcsoak');
let rig: CriRig | null = null;

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 5 s`)));
    req.on('error', reject);
  });
}

async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await call();
  return { ms: performance.now() - t0, value };
}

if (problem) {
  test('cri soak: skipped', () => { console.log(`\nSKIP cri-soak: ${problem}`); });
} else {
  test.before(async () => {
    process.env.VC_ROOT = state.path;
    rig = await startCriContainerd({ name: 'soak', shimPath: [join(process.cwd(), 'bin')], subnet: '10.233.0.0/24', bridge: 'vcsoak0' });
  });
  test.after(async () => {
    await rig?.stop();
    state.remove();
  });

  test(`httpd on the pod IP and ExecSync every second for ${SOAK_MS / 1000} s: no failure, no slowdown past 2×`, async () => {
    const podConfig = podSandboxConfig({ name: 'soak', logRoot: rig!.logRoot, annotations: { 'io.virtcontainers.pod.hypervisor': testHypervisor } });
    const podId = await rig!.cri.runPodSandbox(podConfig, 'virtc');
    const web = await rig!.cri.createContainer(podId, containerConfig({
      name: 'web', image: rig!.images.busybox,
      command: ['sh', '-c', 'mkdir -p /www && echo ok-from-the-vm > /www/index.html && exec httpd -f -p 8080 -h /www'],
    }), podConfig);
    await rig!.cri.startContainer(web);
    const ip = (await rig!.cri.podSandboxStatus(podId)).status.network!.ip;
    const url = `http://${ip}:8080/index.html`;
    for (let i = 0; ; i++) {
      const r = await httpGet(url).catch(() => null);
      if (r?.status === 200) break;
      if (i > 100) throw new Error(`httpd never answered on ${url}`);
      await sleep(100);
    }
    // An attach stream held open through the soak, to a container echoing its stdin: it must still
    // carry a line each 10 s.
    const echoer = await rig!.cri.createContainer(podId, containerConfig({
      name: 'echoer', image: rig!.images.busybox, stdin: true, command: ['sh', '-c', 'while read line; do echo "echo:$line"; done'],
    }), podConfig);
    await rig!.cri.startContainer(echoer);
    const attached = await openStream(await rig!.cri.attach({ containerId: echoer, stdin: true, stdout: true, stderr: true }));
    let lines = 0;
    const execMs: number[] = [];
    const httpMs: number[] = [];
    const failures: string[] = [];
    const end = Date.now() + SOAK_MS;
    while (Date.now() < end) {
      const started = Date.now();
      const [exec, http] = await Promise.all([
        timed(() => rig!.cri.execSync(web, ['sh', '-c', 'test -s /www/index.html && echo alive'], 10)).catch((err: Error) => { failures.push(`ExecSync: ${err.message}`); return null; }),
        timed(() => httpGet(url)).catch((err: Error) => { failures.push(`GET: ${err.message}`); return null; }),
      ]);
      if (exec) {
        execMs.push(exec.ms);
        if (exec.value.exitCode !== 0 || exec.value.stdout !== 'alive\n') failures.push(`ExecSync answered ${JSON.stringify(exec.value)}`);
      }
      if (http) {
        httpMs.push(http.ms);
        if (http.value.status !== 200 || http.value.body !== 'ok-from-the-vm\n') failures.push(`GET answered ${http.value.status} ${JSON.stringify(http.value.body)}`);
      }
      if (execMs.length % 10 === 1) {
        lines++;
        attached.write(`line${lines}\n`);
        await attached.waitFor('stdout', `echo:line${lines}\n`).catch((err: Error) => { failures.push(`attach: ${err.message}`); });
      }
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
    attached.close();
    await attached.done.catch(() => {});
    assert.equal(failures, [], 'every probe answered');
    assert.ok(lines >= Math.floor(SOAK_MS / 10_000), `the attach stream carried ${lines} lines`);
    assert.equal(attached.stdout, Array.from({ length: lines }, (_, i) => `echo:line${i + 1}\n`).join(''), 'in order, nothing lost');
    for (const [name, list] of [['ExecSync', execMs], ['GET', httpMs]] as const) {
      assert.ok(list.length >= Math.floor(SOAK_MS / 1000) - 2, `${name}: only ${list.length} calls in ${SOAK_MS} ms`);
      const first = median(list.slice(0, 5));
      const windows: number[] = [];
      for (let i = 5; i + 10 <= list.length; i += 10) windows.push(median(list.slice(i, i + 10)));
      console.log(`  ${name}: ${list.length} calls; first 5 median ${first.toFixed(1)} ms; 10-call window medians ${windows.map((w) => w.toFixed(1)).join(', ')} ms; worst single ${Math.max(...list).toFixed(1)} ms`);
      for (const [i, w] of windows.entries()) {
        assert.ok(w <= 2 * first, `${name}: window ${i + 1}'s median ${w.toFixed(1)} ms is more than twice the first probes' ${first.toFixed(1)} ms`);
      }
    }
    await rig!.cri.stopPodSandbox(podId);
    await rig!.cri.removePodSandbox(podId);
    assert.equal(await rig!.cri.listPodSandbox(), []);
  });
}

test.run();
