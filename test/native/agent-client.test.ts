// The host client (src/agent) driving the REAL guest agent binary in its host test mode,
// `build/Release/vc-agent --serve-unix PATH`: both sides of docs/agent-protocol.md together.
// A missing binary fails every test (build it with `npx node-gyp rebuild`); it is not a skip.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient, AgentError, dialUnix, type AgentProcess } from '../../src/agent/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const agentBinary = join(root, 'build/Release/vc-agent');
const dir = mkdtempSync('/tmp/vc-agent-client-');
const socketPath = join(dir, 'agent.sock');

let agentProcess: ChildProcess | undefined;
let agentLog = '';
let started: Promise<void> | undefined;
const clients: AgentClient[] = [];

/** Starts the agent once and waits until its socket accepts connections. */
function startAgent(): Promise<void> {
  started ??= (async () => {
    if (!existsSync(agentBinary)) throw new Error(`${agentBinary} is missing: build it with \`npx node-gyp rebuild\``);
    const child = spawn(agentBinary, ['--serve-unix', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    agentProcess = child;
    child.stdout!.on('data', (d) => (agentLog += d));
    child.stderr!.on('data', (d) => (agentLog += d));
    const deadline = Date.now() + 5000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`vc-agent exited with ${child.exitCode}: ${agentLog}`);
      try {
        (await dialUnix(socketPath, { timeoutMs: 500 })).destroy();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`vc-agent did not listen on ${socketPath} within 5 s: ${agentLog}`, { cause: err });
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return started;
}

async function connect(): Promise<AgentClient> {
  await startAgent();
  const client = await AgentClient.connect(() => dialUnix(socketPath), { timeoutMs: 5000 });
  clients.push(client);
  return client;
}

let shared: Promise<AgentClient> | undefined;
function client(): Promise<AgentClient> {
  shared ??= connect();
  return shared;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** stdout, stderr and exit status of a process, read concurrently. */
async function finish(proc: AgentProcess): Promise<{ out: string; err: string; status: { exitCode: number | null; signal: string | null } }> {
  const [out, err] = await Promise.all([collect(proc.stdout), collect(proc.stderr)]);
  return { out: out.toString(), err: err.toString(), status: await proc.wait() };
}

function bounded<T>(promise: Promise<T>, ms = 10_000, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms; agent log:\n${agentLog}`)), ms))),
  ]);
}

test.after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  if (agentProcess && agentProcess.exitCode === null && agentProcess.signalCode === null) {
    const exited = new Promise((r) => agentProcess!.once('exit', r));
    agentProcess.kill('SIGKILL');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the agent binary exists', () => {
  assert.ok(existsSync(agentBinary), `${agentBinary} is missing: build it with \`npx node-gyp rebuild\``);
});

test('hello: connect negotiates v1 and reports the agent name', async () => {
  const c = await bounded(client());
  assert.match(c.agent, /^vc-agent \S+/);
  assert.is(c.closeReason, null);
});

test('guest_info has the documented shape (test mode: this host)', async () => {
  const c = await client();
  const info = await bounded(c.guestInfo());
  assert.equal(Object.keys(info).sort(), ['agent', 'cpus', 'epoch', 'kernelRelease', 'memAvailableKiB', 'memTotalKiB', 'uptimeSec']);
  assert.is(info.kernelRelease, release());
  assert.ok(info.cpus >= 1 && Number.isInteger(info.cpus));
  assert.ok(info.memTotalKiB > 0 && info.memAvailableKiB > 0 && info.memAvailableKiB <= info.memTotalKiB);
  assert.ok(info.uptimeSec > 0);
  assert.is(info.agent, c.agent);
  assert.is(info.epoch, 0, 'a cold-booted agent is epoch 0');
});

test('exec: stdout and stderr arrive separately, exit code 3', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] }));
  assert.ok(proc.id > 0 && proc.pid > 0);
  const { out, err, status } = await bounded(finish(proc));
  assert.is(out, 'out\n');
  assert.is(err, 'err\n');
  assert.equal(status, { exitCode: 3, signal: null });
});

test('exec: env and cwd are applied', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['sh', '-c', 'echo "$GREETING"; pwd'], env: { GREETING: 'hi there' }, cwd: '/tmp' }));
  const { out, status } = await bounded(finish(proc));
  assert.is(out, 'hi there\n/tmp\n');
  assert.is(status.exitCode, 0);
});

test('stdin passes through cat, 3 MiB (beyond the 256 KiB window many times over)', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['cat'] }));
  const size = 3 * 1024 * 1024 + 17;
  const data = Buffer.alloc(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const reading = collect(proc.stdout);
  // Several writes of odd sizes, then end() (the empty STDIN frame lets cat see EOF).
  for (let offset = 0; offset < size; offset += 700_001) proc.stdin.write(data.subarray(offset, Math.min(size, offset + 700_001)));
  proc.stdin.end();
  const out = await bounded(reading, 30_000, 'cat output');
  assert.is(out.length, size);
  assert.is(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(data).digest('hex'));
  assert.equal(await bounded(proc.wait()), { exitCode: 0, signal: null });
  assert.is(c.closeReason, null, 'the agent did not drop us for overrunning the window');
});

test('large output is delivered completely (8 MiB through the flow control)', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['head', '-c', String(8 * 1024 * 1024), '/dev/zero'] }));
  const { out, status } = await bounded(finish(proc), 30_000);
  assert.is(out.length, 8 * 1024 * 1024);
  assert.is(status.exitCode, 0);
});

test("sh -c 'kill -9 $$' reports signal SIGKILL and no exit code", async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['sh', '-c', 'kill -9 $$'] }));
  const { status } = await bounded(finish(proc));
  assert.equal(status, { exitCode: null, signal: 'SIGKILL' });
});

test('kill() with a signal name reaches the process', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['sleep', '100'] }));
  await bounded(proc.kill('SIGTERM'));
  const { status } = await bounded(finish(proc));
  assert.equal(status, { exitCode: null, signal: 'SIGTERM' });
});

test('exec of a missing program rejects EXEC_FAILED naming it', async () => {
  const c = await client();
  try {
    await bounded(c.exec({ argv: ['/nonexistent/vc-no-such-program'] }));
    assert.unreachable('exec should fail');
  } catch (err) {
    assert.instance(err, AgentError);
    assert.is((err as AgentError).code, 'EXEC_FAILED');
    assert.match((err as AgentError).message, /vc-no-such-program/);
  }
  assert.is(c.closeReason, null);
});

test('a TTY exec of `tty` prints a pty path; stderr is empty', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['tty'], tty: true, rows: 24, cols: 80 }));
  assert.ok(proc.tty);
  const { out, err, status } = await bounded(finish(proc));
  assert.match(out, /^\/dev\/pts\/\d+\r?\n$/);
  assert.is(err, '');
  assert.equal(status, { exitCode: 0, signal: null });
});

test('resize changes the size a TTY process sees; a pipe process answers BAD_REQUEST', async () => {
  const c = await client();
  const proc = await bounded(c.exec({ argv: ['sh', '-c', 'read line; stty size'], tty: true, rows: 24, cols: 80 }));
  await bounded(proc.resize(50, 132));
  proc.stdin.write('go\n');
  const { out, status } = await bounded(finish(proc));
  assert.match(out, /50 132\r?\n$/);
  assert.is(status.exitCode, 0);
  const piped = await bounded(c.exec({ argv: ['sleep', '100'] }));
  try {
    await bounded(piped.resize(10, 10));
    assert.unreachable('resize of a pipe process should fail');
  } catch (err) {
    assert.is((err as AgentError).code, 'BAD_REQUEST');
  } finally {
    await piped.kill('SIGKILL');
    await bounded(finish(piped));
  }
});

test('concurrent requests on one connection are answered to the right caller', async () => {
  const c = await client();
  const [info, a, b] = await bounded(
    Promise.all([c.guestInfo(), c.exec({ argv: ['sh', '-c', 'echo A'] }), c.exec({ argv: ['sh', '-c', 'echo B >&2; exit 7'] })]),
  );
  assert.type(info.kernelRelease, 'string');
  const [ra, rb] = await bounded(Promise.all([finish(a), finish(b)]));
  assert.equal(ra, { out: 'A\n', err: '', status: { exitCode: 0, signal: null } });
  assert.equal(rb, { out: '', err: 'B\n', status: { exitCode: 7, signal: null } });
});

test('a process outlives its connection and can be attached from another one', async () => {
  const first = await connect();
  const proc = await bounded(first.exec({ argv: ['sh', '-c', 'sleep 0.3; echo later'] }));
  await first.close();
  const second = await connect();
  const attached = await bounded(second.attach(proc.id));
  const { out, status } = await bounded(finish(attached));
  assert.is(out, 'later\n');
  assert.equal(status, { exitCode: 0, signal: null });
});

test('closing the client while a process runs: wait() rejects AGENT_CLOSED', async () => {
  const c = await connect();
  const proc = await bounded(c.exec({ argv: ['sleep', '100'] }));
  const waited = proc.wait().then(
    () => null,
    (err: AgentError) => err,
  );
  await c.close();
  const err = await bounded(waited);
  assert.is(err?.code, 'AGENT_CLOSED');
  // Clean up the detached sleep from a fresh connection.
  const other = await connect();
  const again = await bounded(other.attach(proc.id));
  await again.kill('SIGKILL');
  assert.equal((await bounded(finish(again))).status, { exitCode: null, signal: 'SIGKILL' });
});

test('a status reported to one connection is collected: a later attach finds nothing', async () => {
  const first = await connect();
  const proc = await bounded(first.exec({ argv: ['sh', '-c', 'exit 5'] }));
  assert.equal((await bounded(finish(proc))).status, { exitCode: 5, signal: null });
  await first.close();
  const second = await connect();
  try {
    await bounded(second.attach(proc.id));
    assert.unreachable('attach after the EXIT was delivered should fail');
  } catch (err) {
    assert.is((err as AgentError).code, 'NOT_FOUND');
  }
  await second.close();
});

test('a process that exits while detached keeps its status until attached', async () => {
  const first = await connect();
  const proc = await bounded(first.exec({ argv: ['sh', '-c', 'sleep 0.3; echo late; exit 6'] }));
  await first.close();
  await new Promise((resolve) => setTimeout(resolve, 700));
  const second = await connect();
  const attached = await bounded(second.attach(proc.id));
  const { out, status } = await bounded(finish(attached));
  assert.is(out, 'late\n');
  assert.equal(status, { exitCode: 6, signal: null });
  await second.close();
});

test.run();
