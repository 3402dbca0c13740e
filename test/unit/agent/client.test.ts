// AgentClient requests against a scripted fake agent on a real Unix socket: hello, multiplexing,
// guest errors, protocol errors, connection loss, timeouts and aborts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient } from '../../../src/agent/client.js';
import { dialUnix } from '../../../src/agent/dial.js';
import { AgentError } from '../../../src/agent/errors.js';
import { encodeFrame, encodeResponse, FrameType, type RequestFrame } from '../../../src/agent/protocol.js';
import { FakeAgent, FakeConn, rejection, within } from './fake-agent.js';

function encodeResponseFor(id: number, result: Record<string, unknown>): Buffer {
  return encodeResponse(id, { ok: true, result });
}

async function setup(options: { requestTimeoutMs?: number } = {}): Promise<{ agent: FakeAgent; client: AgentClient; conn: FakeConn }> {
  const agent = await FakeAgent.start();
  const client = await within(AgentClient.connect(agent.dial, options), 2000, 'connect');
  const conn = await agent.nextConnection();
  return { agent, client, conn };
}

async function teardown(agent: FakeAgent, client: AgentClient): Promise<void> {
  await within(client.close(), 2000, 'close');
  await agent.stop();
}

test.after.each(() => FakeAgent.stopAll());

test('connect sends hello with version 1 as the first request and keeps the agent name', async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const connecting = AgentClient.connect(agent.dial);
  const conn = await agent.nextConnection();
  const hello = await conn.nextRequest();
  assert.is(hello.op, 'hello');
  assert.equal(hello.args, { version: 1 });
  assert.ok(hello.id > 0);
  conn.reply(hello.id, { version: 1, agent: 'vc-agent 9.9' });
  const client = await within(connecting);
  assert.is(client.agent, 'vc-agent 9.9');
  assert.is(client.closeReason, null);
  await teardown(agent, client);
});

test('helloRetryMs: an unanswered hello is sent again; the late answer to the first is ignored', async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const connecting = AgentClient.connect(agent.dial, { helloRetryMs: 50 });
  const conn = await agent.nextConnection();
  const first = await conn.nextRequest('hello');
  const second = await conn.nextRequest('hello'); // after 50 ms without an answer
  assert.is.not(second.id, first.id);
  conn.reply(first.id, { version: 1, agent: 'late' });
  conn.reply(second.id, { version: 1, agent: 'vc-agent 9.9' });
  const client = await within(connecting);
  assert.is(client.agent, 'vc-agent 9.9');
  assert.is(client.closeReason, null, 'the late answer did not break the connection');
  await teardown(agent, client);
});

test('without helloRetryMs a hello is sent once', async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const connecting = AgentClient.connect(agent.dial, { timeoutMs: 300 });
  const conn = await agent.nextConnection();
  await conn.nextRequest('hello');
  const err = await rejection(connecting);
  assert.is(err.code, 'AGENT_TIMEOUT');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(conn.queued.filter((f) => f.type === FrameType.REQUEST), [], 'no second hello');
  await agent.stop();
});

test('hello answered with another version rejects AGENT_VERSION_MISMATCH and closes the socket', async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const connecting = AgentClient.connect(agent.dial);
  const conn = await agent.nextConnection();
  const hello = await conn.nextRequest('hello');
  conn.reply(hello.id, { version: 2, agent: 'vc-agent 2' });
  const err = await rejection(connecting);
  assert.is(err.code, 'AGENT_VERSION_MISMATCH');
  assert.match(err.message, /version 2; this client speaks 1/);
  await within(conn.closed, 2000, 'socket close');
  await agent.stop();
});

test("the agent's VERSION_MISMATCH error is passed on with its code and message", async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const connecting = AgentClient.connect(agent.dial);
  const conn = await agent.nextConnection();
  const hello = await conn.nextRequest('hello');
  conn.fail(hello.id, 'VERSION_MISMATCH', 'this agent speaks version 7');
  const err = await rejection(connecting);
  assert.instance(err, AgentError);
  assert.is(err.code, 'VERSION_MISMATCH');
  assert.is(err.message, 'this agent speaks version 7');
  assert.is(err.op, 'hello');
  await agent.stop();
});

test('concurrent requests get distinct ids and each gets its own answer, whatever the order', async () => {
  const { agent, client, conn } = await setup();
  const a = client.request('alpha', { n: 1 });
  const b = client.request('beta', { n: 2 });
  const c = client.guestInfo();
  const reqs = [await conn.nextRequest(), await conn.nextRequest(), await conn.nextRequest()];
  const ids = reqs.map((r) => r.id);
  assert.is(new Set(ids).size, 3);
  assert.ok(ids.every((id) => id > 0));
  const byOp = new Map(reqs.map((r) => [r.op, r] as [string, RequestFrame]));
  assert.equal(byOp.get('alpha')!.args, { n: 1 });
  // Answer in reverse order, two of them in one write.
  conn.reply(byOp.get('guest_info')!.id, { kernelRelease: '6.1.0', uptimeSec: 1.5, memTotalKiB: 1000, memAvailableKiB: 900, cpus: 2, agent: 'fake' });
  conn.send(
    encodeResponseFor(byOp.get('beta')!.id, { who: 'beta' }),
    encodeResponseFor(byOp.get('alpha')!.id, { who: 'alpha' }),
  );
  assert.equal(await within(a), { who: 'alpha' });
  assert.equal(await within(b), { who: 'beta' });
  assert.equal(await within(c), { kernelRelease: '6.1.0', uptimeSec: 1.5, memTotalKiB: 1000, memAvailableKiB: 900, cpus: 2, agent: 'fake', epoch: 0 });
  await teardown(agent, client);
});


test('a guest error response rejects with the guest code, message and op; the connection stays usable', async () => {
  const { agent, client, conn } = await setup();
  const p = client.request('signal', { process: 99, signal: 15 });
  const req = await conn.nextRequest('signal');
  conn.fail(req.id, 'NOT_FOUND', 'no process 99');
  const err = await rejection(p);
  assert.instance(err, AgentError);
  assert.is(err.code, 'NOT_FOUND');
  assert.is(err.message, 'no process 99');
  assert.is(err.op, 'signal');
  const q = client.request('ping');
  conn.reply((await conn.nextRequest('ping')).id, { pong: true });
  assert.equal(await within(q), { pong: true });
  await teardown(agent, client);
});

test('guest_info with a missing field rejects AGENT_PROTOCOL naming the field', async () => {
  const { agent, client, conn } = await setup();
  const p = client.guestInfo();
  conn.reply((await conn.nextRequest('guest_info')).id, { kernelRelease: '6.1', uptimeSec: 1, memTotalKiB: 1, cpus: 1, agent: 'x' });
  const err = await rejection(p);
  assert.is(err.code, 'AGENT_PROTOCOL');
  assert.match(err.message, /"memAvailableKiB" must be a non-negative number, got undefined/);
  await teardown(agent, client);
});

test('a RESPONSE for an id that is not outstanding rejects every pending request with AGENT_PROTOCOL and closes', async () => {
  const { agent, client, conn } = await setup();
  const p1 = client.request('one');
  const p2 = client.request('two');
  await conn.nextRequest('one');
  await conn.nextRequest('two');
  conn.reply(777, {});
  for (const p of [p1, p2]) {
    const err = await rejection(p);
    assert.is(err.code, 'AGENT_PROTOCOL');
    assert.match(err.message, /request id 777, which is not outstanding/);
  }
  const reason = await within(client.closed);
  assert.is(reason.code, 'AGENT_PROTOCOL');
  await within(conn.closed, 2000, 'socket close');
  const later = await rejection(client.request('three'));
  assert.is(later.code, 'AGENT_PROTOCOL');
  await agent.stop();
});

test('a malformed frame rejects pending requests with AGENT_PROTOCOL naming the field and value', async () => {
  const { agent, client, conn } = await setup();
  const p = client.request('one');
  await conn.nextRequest('one');
  const bad = encodeFrame(FrameType.STDOUT, 1, Buffer.from('x'));
  bad[5] = 3; // flags
  conn.send(bad);
  const err = await rejection(p);
  assert.is(err.code, 'AGENT_PROTOCOL');
  assert.match(err.message, /flags are 0x03, must be 0/);
  await within(conn.closed, 2000, 'socket close');
  await agent.stop();
});

test('the agent may not send REQUEST or STDIN frames', async () => {
  for (const type of [FrameType.REQUEST, FrameType.STDIN]) {
    const { agent, client, conn } = await setup();
    const p = client.request('one');
    conn.send(type === FrameType.REQUEST ? encodeFrame(type, 5, Buffer.from('{"op":"x"}')) : encodeFrame(type, 5, Buffer.from('x')));
    const err = await rejection(p);
    assert.is(err.code, 'AGENT_PROTOCOL');
    assert.match(err.message, /must not be sent by the agent/);
    await agent.stop();
  }
});

test('an error RESPONSE with id 0 (agent rejecting our input) closes with its message', async () => {
  const { agent, client, conn } = await setup();
  const p = client.request('one');
  conn.fail(0, 'BAD_REQUEST', 'malformed frame: bad frame length 3');
  const err = await rejection(p);
  assert.is(err.code, 'AGENT_PROTOCOL');
  assert.match(err.message, /BAD_REQUEST: malformed frame: bad frame length 3/);
  await agent.stop();
});

test('the agent closing the connection rejects pending requests with AGENT_CLOSED', async () => {
  const { agent, client, conn } = await setup();
  const p = client.request('one');
  await conn.nextRequest('one');
  conn.socket.end();
  const err = await rejection(p);
  assert.is(err.code, 'AGENT_CLOSED');
  assert.is(err.op, 'one');
  const reason = await within(client.closed);
  assert.is(reason.code, 'AGENT_CLOSED');
  const later = await rejection(client.request('two'));
  assert.is(later.code, 'AGENT_CLOSED');
  await agent.stop();
});

test('close() rejects pending requests with AGENT_CLOSED and closes the socket', async () => {
  const { agent, client, conn } = await setup();
  const p = client.request('one');
  await conn.nextRequest('one');
  const rejected = rejection(p);
  await within(client.close());
  const err = await rejected;
  assert.is(err.code, 'AGENT_CLOSED');
  assert.match(err.message, /client closed/);
  await within(conn.closed, 2000, 'socket close');
  await agent.stop();
});

test('a request without an answer times out with AGENT_TIMEOUT; the late answer is ignored and its id not reused meanwhile', async () => {
  const { agent, client, conn } = await setup();
  const slow = client.request('slow', {}, { timeoutMs: 50 });
  const slowReq = await conn.nextRequest('slow');
  const err = await rejection(slow);
  assert.is(err.code, 'AGENT_TIMEOUT');
  assert.is(err.op, 'slow');
  assert.match(err.message, /slow got no response within 50 ms/);
  // Other requests meanwhile never reuse the abandoned id.
  const ids = new Set<number>();
  for (let i = 0; i < 5; i++) {
    const p = client.request('fast');
    const req = await conn.nextRequest('fast');
    ids.add(req.id);
    conn.reply(req.id, { i });
    assert.equal(await within(p), { i });
  }
  assert.not.ok(ids.has(slowReq.id));
  conn.reply(slowReq.id, { late: true }); // not a protocol error: the id was outstanding
  const after = client.request('after');
  conn.reply((await conn.nextRequest('after')).id, { ok: 1 });
  assert.equal(await within(after), { ok: 1 });
  assert.is(client.closeReason, null);
  await teardown(agent, client);
});

test('the client default request timeout applies; timeoutMs 0 disables it', async () => {
  const { agent, client, conn } = await setup({ requestTimeoutMs: 40 });
  const err = await rejection(client.request('slow'));
  assert.is(err.code, 'AGENT_TIMEOUT');
  const patient = client.request('patient', {}, { timeoutMs: 0 });
  const req = await conn.nextRequest('patient');
  await new Promise((r) => setTimeout(r, 100));
  conn.reply(req.id, { waited: true });
  assert.equal(await within(patient), { waited: true });
  await teardown(agent, client);
});

test('an already aborted signal rejects AGENT_ABORTED without sending anything', async () => {
  const { agent, client, conn } = await setup();
  const reason = new Error('user gave up');
  const err = await rejection(client.request('never', {}, { signal: AbortSignal.abort(reason) }));
  assert.is(err.code, 'AGENT_ABORTED');
  assert.is(err.cause, reason);
  const p = client.request('marker');
  const first = await conn.nextRequest();
  assert.is(first.op, 'marker');
  conn.reply(first.id, {});
  await within(p);
  await teardown(agent, client);
});

test('aborting an in-flight request rejects AGENT_ABORTED with the reason as cause', async () => {
  const { agent, client, conn } = await setup();
  const controller = new AbortController();
  const p = client.request('long', {}, { signal: controller.signal });
  const req = await conn.nextRequest('long');
  controller.abort('stop');
  const err = await rejection(p);
  assert.is(err.code, 'AGENT_ABORTED');
  assert.is(err.cause, 'stop');
  conn.reply(req.id, {});
  const q = client.request('still-open');
  conn.reply((await conn.nextRequest('still-open')).id, {});
  await within(q);
  await teardown(agent, client);
});

test('connect times out with AGENT_TIMEOUT when hello is never answered, and closes the socket', async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const started = Date.now();
  const connecting = AgentClient.connect(agent.dial, { timeoutMs: 100 });
  const conn = await agent.nextConnection();
  const err = await rejection(connecting);
  assert.is(err.code, 'AGENT_TIMEOUT');
  assert.match(err.message, /timed out after 100 ms/);
  assert.ok(Date.now() - started >= 95);
  await within(conn.closed, 2000, 'socket close');
  await agent.stop();
});

test('connect can be aborted while waiting for hello', async () => {
  const agent = await FakeAgent.start();
  agent.hello = 'manual';
  const controller = new AbortController();
  const connecting = AgentClient.connect(agent.dial, { signal: controller.signal });
  const conn = await agent.nextConnection();
  await conn.nextRequest('hello');
  controller.abort();
  const err = await rejection(connecting);
  assert.is(err.code, 'AGENT_ABORTED');
  await within(conn.closed, 2000, 'socket close');
  await agent.stop();
});

test('connect destroys a socket that the dialer delivers after the deadline', async () => {
  const agent = await FakeAgent.start();
  let dialed: import('node:net').Socket | undefined;
  const slowDial = async () => {
    await new Promise((r) => setTimeout(r, 150));
    dialed = await dialUnix(agent.path);
    return dialed;
  };
  const err = await rejection(AgentClient.connect(slowDial, { timeoutMs: 30 }));
  assert.is(err.code, 'AGENT_TIMEOUT');
  const conn = await agent.nextConnection();
  await within(conn.closed, 2000, 'late socket close');
  assert.ok(dialed?.destroyed);
  await agent.stop();
});

test('a dialer failure becomes AGENT_CONNECT_FAILED', async () => {
  const err = await rejection(AgentClient.connect(() => dialUnix('/nonexistent/vc-agent.sock')));
  assert.is(err.code, 'AGENT_CONNECT_FAILED');
  assert.match(err.message, /\/nonexistent\/vc-agent\.sock/);
  const custom = await rejection(AgentClient.connect(async () => { throw new Error('no route'); }));
  assert.is(custom.code, 'AGENT_CONNECT_FAILED');
  assert.match(custom.message, /no route/);
});

test('request() refuses ops that have their own method, and arguments named op', async () => {
  const { agent, client } = await setup();
  for (const op of ['hello', 'exec', 'attach']) {
    const err = await rejection(client.request(op, {}));
    assert.is(err.code, 'AGENT_INVALID_ARGUMENT');
  }
  const err = await rejection(client.request('x', { op: 'y' }));
  assert.is(err.code, 'AGENT_INVALID_ARGUMENT');
  await teardown(agent, client);
});

test('shutdown sends the shutdown op and resolves on its answer', async () => {
  const { agent, client, conn } = await setup();
  const p = client.shutdown();
  const req = await conn.nextRequest('shutdown');
  assert.equal(req.args, {});
  conn.reply(req.id, {});
  await within(p);
  await teardown(agent, client);
});

test.run();
