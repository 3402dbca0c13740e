// The host side of port forwarding against the REAL agent binary in its host test mode: the
// AgentClient.forward Duplex (data both ways, half-close, destroy closes the guest socket,
// FORWARD_FAILED), and the API's shared agent connection per pod (src/api/port-forward.ts): 50
// forwards at once take ONE agent connection, which closes when the last forward ends and is
// replaced when it dies. The "pod" is a RunningPod whose agent endpoint is the test agent's socket.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { AgentClient, dialUnix } from '../../src/agent/index.js';
import { acquireAgentLink, forwardOnPod, sharedAgentLinks } from '../../src/api/port-forward.js';
import type { RunningPod } from '../../src/api/pod-session.js';
import { startAgent, type RunningAgent } from './agent-wire.js';

let dir = '';
let agent: RunningAgent;
let echoServer: Server;
let echoPort = 0;
const echoSockets: Socket[] = [];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pod record good enough for the shared link: its agent is the test agent. */
function fakePod(): RunningPod {
  return {
    record: { id: 'fwd', vmm: { pid: agent.proc.pid!, startedAt: 'test' } },
    hypervisor: { agentEndpoint: () => ({ kind: 'unix', path: agent.sockPath }) },
    paths: { dir },
  } as unknown as RunningPod;
}

/** Host connections to the agent's socket now (accepted sockets carry the listener's path in /proc/net/unix). */
function agentConnections(): number {
  const lines = readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1);
  // Flags 00010000 = __SO_ACCEPTCON: the listener itself.
  return lines.filter((l) => l.endsWith(` ${agent.sockPath}`) && l.trim().split(/\s+/)[3] !== '00010000').length;
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

/** Writes `data`, ends, and reads everything back. */
async function roundTrip(stream: Duplex, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(data);
  await done;
  return Buffer.concat(chunks);
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vc-forward-client-'));
  agent = await startAgent(dir);
  echoServer = createServer({ allowHalfOpen: true }, (s) => {
    echoSockets.push(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echoServer.listen(0, '127.0.0.1', r));
  echoPort = (echoServer.address() as AddressInfo).port;
});

test.after(async () => {
  echoServer?.close();
  agent?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('AgentClient.forward: a Duplex to the guest port; 8 MiB echo, clean end, EXIT 0', async () => {
  const client = await AgentClient.connect(() => dialUnix(agent.sockPath));
  const stream = await client.forward(echoPort);
  const data = randomBytes(8 << 20);
  const back = await roundTrip(stream, data);
  assert.is(back.length, data.length);
  assert.is(sha(back), sha(data));
  assert.equal(await stream.ended, { exitCode: 0, signal: null });
  await client.close();
});

test('AgentClient.forward: a closed port rejects with the agent\'s FORWARD_FAILED', async () => {
  const client = await AgentClient.connect(() => dialUnix(agent.sockPath));
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const err = await client.forward(port).then(() => null, (e) => e);
  assert.is(err?.code, 'FORWARD_FAILED');
  assert.match(err.message, `127.0.0.1:${port}: Connection refused`);
  assert.is(err.op, 'forward');
  await client.close();
});

test('AgentClient.forward: destroy() closes the guest socket (the server sees its end or a reset)', async () => {
  const client = await AgentClient.connect(() => dialUnix(agent.sockPath));
  try {
    const before = echoSockets.length;
    const stream = await client.forward(echoPort);
    await until(() => echoSockets.length === before + 1, 'the server accepting');
    const serverSide = echoSockets[before]!;
    // The agent closes its socket; if the echo of 'x' reached it unread by then (a loaded host),
    // the kernel resets the connection instead of ending it: the server sees ECONNRESET, not 'end'.
    const closed = new Promise<string>((r) => {
      serverSide.once('end', () => r('end'));
      serverSide.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
    });
    stream.write('x');
    stream.destroy();
    const how = await Promise.race([closed, sleep(5000).then(() => { throw new Error('the guest socket stayed open'); })]);
    assert.ok(how === 'end' || how === 'ECONNRESET', `the server saw ${how}`);
    assert.equal(await stream.ended, { exitCode: null, signal: 'SIGKILL' });
  } finally {
    await client.close();
  }
});

test('forwardOnPod: 50 forwards at once share ONE agent connection, closed when the last ends', async () => {
  const pod = fakePod();
  // The earlier tests' clients have closed; the agent drops its end when it reads their EOF.
  await until(() => agentConnections() === 0, 'no agent connection before');
  const streams = await Promise.all(Array.from({ length: 50 }, () => forwardOnPod(pod, echoPort, '127.0.0.1')));
  assert.equal(sharedAgentLinks().map((l) => [l.refs, l.open]), [[50, true]]);
  assert.is(agentConnections(), 1, 'one agent connection for 50 forwards');
  const payloads = streams.map((_, i) => Buffer.from(`stream ${i};`.repeat(5000 + i * 31)));
  const results = await Promise.all(streams.map((s, i) => roundTrip(s, payloads[i]!)));
  for (const [i, r] of results.entries()) assert.is(sha(r), sha(payloads[i]!), `stream ${i}`);
  await Promise.all(streams.map((s) => (s as { ended: Promise<unknown> }).ended));
  await until(() => sharedAgentLinks().length === 0, 'the link released');
  await until(() => agentConnections() === 0, 'the agent connection closed');
});

test('forwardOnPod: a dead shared connection is replaced on the next call', async () => {
  const pod = fakePod();
  const first = await acquireAgentLink(pod);
  await first.client.close();
  const stream = await forwardOnPod(pod, echoPort, '127.0.0.1');
  const links = sharedAgentLinks();
  assert.is(links.length, 1);
  assert.ok(links[0]!.open);
  assert.is((await roundTrip(stream, Buffer.from('again'))).toString(), 'again');
  first.release();
  await until(() => sharedAgentLinks().length === 0, 'the link released');
});

test('forwardOnPod: a failed forward releases its reference; the connection goes with the last one', async () => {
  const pod = fakePod();
  const err = await forwardOnPod(pod, 1, '127.0.0.1').then(() => null, (e) => e);
  assert.is(err?.code, 'FORWARD_FAILED');
  await until(() => sharedAgentLinks().length === 0 && agentConnections() === 0, 'nothing left open');
});

test.run();
