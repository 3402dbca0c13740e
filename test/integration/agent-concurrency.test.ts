// vc-test: judges-speed
// Many host processes talk to one pod's agent at once: a long stream from one virtc process does
// not hold up short execs from others (QEMU: one virtio-serial port per client, shared out by
// lease files; the built-in VMM: hybrid vsock). One pod boot for the whole file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPod, enterPod, startPod, type PodProcess } from '../../src/index.js';
import { readAll, teardownRoot } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { testHypervisor as hypervisor } from '../helpers/hypervisor.js';

const virtcPath = fileURLToPath(new URL('../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vcq');
const root = tmp.path;
const POD = 'conc';
// The stream ticks each second until told to stop (or after MAX_TICKS), so a loaded machine
// that runs the short execs slowly cannot end it first.
const MAX_TICKS = 90;
const SLEEP_MS = 8000;

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

interface Line { text: string; at: number }
interface Finished { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; at: number }
interface VirtcRun { lines: Line[]; pid: number; firstLine: Promise<Line>; done: Promise<Finished>; kill(): void }

/** `virtc ARGS` as a separate process; each stdout line is stamped with when it arrived here. */
function virtc(args: string[]): VirtcRun {
  const child = spawn(process.execPath, [virtcPath, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  let stdout = '', stderr = '', partial = '';
  let onFirst!: (line: Line) => void;
  const firstLine = new Promise<Line>((resolve) => (onFirst = resolve));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    partial += d;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const line = { text: partial.slice(0, nl), at: Date.now() };
      partial = partial.slice(nl + 1);
      lines.push(line);
      if (lines.length === 1) onFirst(line);
    }
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d; });
  const done = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, at: Date.now() }));
  });
  return { lines, pid: child.pid!, firstLine, done, kill: () => child.kill('SIGKILL') };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms); }),
  ]);
}

test('one pod boots for the whole file', async () => {
  // 512 MiB: a QEMU pod of this size gets the full 16 agent ports (fewer below, by memory).
  await createPod({ id: POD, hypervisor, memoryMiB: 512 }, { root });
  const started = Date.now();
  const status = await startPod(POD, { root });
  assert.is(status.state, 'running');
  console.log(`# ${hypervisor} pod: startPod took ${Date.now() - started} ms`);
});

test('10 short execs from other processes answer while one process streams', async () => {
  const loop = `i=0; while [ $i -lt ${MAX_TICKS} ] && [ ! -e /tmp/stop-ticking ]; do i=$((i+1)); echo tick $i; sleep 1; done`;
  const stream = virtc(['pod', 'enter', '--id', POD, '--', 'sh', '-c', loop]);
  await within(stream.firstLine, 60_000, 'the first tick of the stream');
  const shortsStarted = Date.now();
  const shorts = Array.from({ length: 10 }, (_, n) => virtc(['pod', 'enter', '--id', POD, '--', 'echo', `short ${n}`]));
  const results = await Promise.all(shorts.map((s) => s.done));
  const lastShort = Math.max(...results.map((r) => r.at));
  results.forEach((r, n) => {
    assert.is(r.code, 0, `short exec ${n} failed: ${r.stderr}`);
    assert.is(r.stdout, `short ${n}\n`);
  });

  // The stream is still going: it ticks again after the last short exec has finished.
  await within(new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (stream.lines.some((l) => l.at > lastShort)) { clearInterval(check); resolve(); }
    }, 50);
  }), 5000, 'a tick after the short execs').catch(() => {});
  const stop = await virtc(['pod', 'enter', '--id', POD, '--', 'touch', '/tmp/stop-ticking']).done;
  assert.is(stop.code, 0, stop.stderr);
  const streamed = await stream.done;
  assert.is(streamed.code, 0, streamed.stderr);
  const ticks = stream.lines.map((l) => l.text);
  assert.equal(ticks, ticks.map((_, i) => `tick ${i + 1}`), 'no tick lost or garbled');

  const ticksAfter = stream.lines.filter((l) => l.at > lastShort).length;
  console.log(`# 10 short execs done ${lastShort - shortsStarted} ms after they started; the stream ticked ${ticksAfter} more times, then ended on request ${streamed.at - lastShort} ms later`);
  assert.ok(ticks.length < MAX_TICKS, `the stream was still running when the short execs had finished (it ran out its ${MAX_TICKS} ticks)`);
  assert.ok(ticksAfter >= 1, 'the stream kept ticking after the short execs finished');
});

test('with every port taken a client waits for one; a killed client frees its port', async () => {
  if (hypervisor !== 'qemu') {
    console.log('SKIP ports-busy test: the built-in VMM\'s hybrid vsock has no ports to run out of');
    return;
  }
  const recorded = JSON.parse(readFileSync(join(root, 'pods', POD, 'state.json'), 'utf8')) as { vmm: { agentPorts?: number } };
  const ports = recorded.vmm.agentPorts;
  assert.is(ports, 16, 'the pod records its port count');
  // A virtc process holds one port, this process's enterPods hold the rest.
  const holder = virtc(['pod', 'enter', '--id', POD, '--', 'sh', '-c', 'echo up; sleep 60']);
  await within(holder.firstLine, 30_000, 'the holder process');
  const sleepers: PodProcess[] = [];
  const firstSleeperEnds = Date.now() + SLEEP_MS; // no sleeper's port frees before this
  for (let i = 1; i < ports!; i++) sleepers.push(await enterPod(POD, ['sleep', String(SLEEP_MS / 1000)], { root }));

  // All ports taken: this one waits. Killing the holder frees its port (the kernel drops its lease).
  const waiting = enterPod(POD, ['echo', 'late'], { root });
  const raced = await Promise.race([waiting.then(() => 'got a port'), new Promise((r) => setTimeout(() => r('waiting'), 1000))]);
  assert.is(raced, 'waiting', `client ${ports! + 1} found no free port`);
  const killedAt = Date.now();
  holder.kill();
  const late = await waiting;
  const [out, status] = await Promise.all([readAll(late.stdout), late.wait()]);
  const lateDone = Date.now();
  assert.equal([out, status.exitCode], ['late\n', 0]);
  console.log(`# the waiting client ran ${lateDone - killedAt} ms after the holder was killed; the first sleeper ends ${firstSleeperEnds - lateDone} ms later`);
  assert.ok(lateDone < firstSleeperEnds, 'it got the killed holder\'s port, not that of a sleeper that ended');
  const statuses = await Promise.all(sleepers.map((p) => p.wait()));
  assert.ok(statuses.every((s) => s.exitCode === 0), 'processes on the other ports ran to the end');
});

test.run();
