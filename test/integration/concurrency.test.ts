// What held before the crash-only work and must keep holding (issue 12): concurrent callers in
// separate processes get one pod and one VM; a VMM killed mid-boot fails that start and a later
// start works; garbage on the agent channel does not stop the agent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dialHybridVsock, dialLeasedPort } from '../../src/agent/index.js';
import { hypervisorFor } from '../../src/hypervisor/select.js';
import { podPaths } from '../../src/store/paths.js';
import { deletePod, enterPod, podStatus, startPod, stopPod } from '../../src/index.js';
import type { PodRecord } from '../../src/model/records.js';
import { readAll, teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { testHypervisor as hypervisor } from '../helpers/hypervisor.js';

const virtc = fileURLToPath(new URL('../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vcconc');
const root = tmp.path;

interface Result { code: number | null; stdout: string; stderr: string }

function run(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [virtc, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const codeIn = (r: Result) => /\[([A-Z_]+)\]\s*$/.exec(r.stderr.trim())?.[1] ?? (r.code === 0 ? 'ok' : `exit ${r.code}`);

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('6 concurrent creates of one id: one wins, five get POD_EXISTS', async () => {
  const results = await Promise.all(Array.from({ length: 6 }, () => run(['pod', 'create', '--id', 'same', '--hypervisor', hypervisor, '--memory', '256'])));
  const codes = results.map(codeIn).sort();
  assert.equal(codes, ['POD_EXISTS', 'POD_EXISTS', 'POD_EXISTS', 'POD_EXISTS', 'POD_EXISTS', 'ok'], results.map((r) => r.stderr).join('\n'));
});

test('3 concurrent starts: one VM; the others find it running', async () => {
  const results = await Promise.all(Array.from({ length: 3 }, () => run(['pod', 'start', '--id', 'same'])));
  const codes = results.map(codeIn).sort();
  assert.equal(codes, ['ILLEGAL_TRANSITION', 'ILLEGAL_TRANSITION', 'ok'], results.map((r) => r.stderr).join('\n'));
  assert.is(vmmProcessesUnder(`${root}/pods/same/`).length, 1, 'exactly one VMM runs for the pod');
});

test('20 connections of random bytes to the agent channel: the agent still answers', async () => {
  const record = JSON.parse(readFileSync(`${root}/pods/same/state.json`, 'utf8')) as PodRecord;
  const endpoint = hypervisorFor(hypervisor).agentEndpoint(podPaths(root, 'same'), record.vmm);
  for (let i = 0; i < 20; i++) {
    if (endpoint.kind === 'unix') throw new Error(`unexpected agent endpoint ${endpoint.kind}`);
    const socket = endpoint.kind === 'leased-ports'
      ? await dialLeasedPort(endpoint.ports, { timeoutMs: 10_000 })
      : await dialHybridVsock(endpoint.path, endpoint.port, { timeoutMs: 10_000 });
    await new Promise<void>((resolve) => socket.write(randomBytes(64 + i * 97), () => resolve()));
    socket.destroy();
  }
  const proc = await enterPod('same', ['echo', 'still here'], { root });
  const [out, status] = await Promise.all([readAll(proc.stdout), proc.wait()]);
  assert.equal(status, { exitCode: 0, signal: null });
  assert.is(out.trim(), 'still here');
  await stopPod('same', { root });
});

test('a VMM killed mid-boot: that start fails AGENT_UNREACHABLE, the next one works', async () => {
  if ((await podStatus('same', { root })).state === 'running') await stopPod('same', { root }); // an earlier test failed
  const starting = startPod('same', { root }).then(() => 'ok', (err: { code?: string }) => err.code);
  // Once the VMM is recorded (it is up; the guest is booting), it is killed.
  let vmm: number | undefined;
  for (let i = 0; i < 1200 && vmm === undefined; i++) {
    const record = JSON.parse(readFileSync(`${root}/pods/same/state.json`, 'utf8')) as PodRecord;
    vmm = record.state === 'starting' ? record.vmm?.pid : undefined;
    if (vmm === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.ok(vmm, 'the VMM was recorded within 30 s');
  process.kill(vmm!, 'SIGKILL');
  assert.is(await starting, 'AGENT_UNREACHABLE');
  assert.is((await podStatus('same', { root })).state, 'stopped');
  assert.equal(vmmProcessesUnder(`${root}/pods/same/`), []);
  const again = await startPod('same', { root });
  assert.is(again.state, 'running');
  await stopPod('same', { root });
  await deletePod('same', { root });
  assert.equal(vmmProcessesUnder(`${root}/pods/same/`), []);
});

test.run();
