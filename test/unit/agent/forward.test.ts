// The `forward` op on the host side: forwardArguments checks the port and host before anything is
// sent (naming the field and value); AgentClient.forward returns a Duplex over the process stream
// (against the scripted fake agent): data both ways, half-close, EXIT with an error destroys it
// with FORWARD_FAILED, destroy() sends `signal`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient } from '../../../src/agent/client.js';
import { forwardArguments, forwardTargetName } from '../../../src/agent/forward.js';
import { FrameDecoder } from '../../../src/agent/decoder.js';
import { encodeExit, encodeFrame, FrameType, type Frame } from '../../../src/agent/protocol.js';
import { FakeAgent, FakeConn, rejection, within } from './fake-agent.js';

test.after.each(() => FakeAgent.stopAll());

test('forwardArguments: port 1..65535 and an IP literal host pass through', () => {
  assert.equal(forwardArguments(80), { port: 80 });
  assert.equal(forwardArguments(1, {}), { port: 1 });
  assert.equal(forwardArguments(65535, { host: '10.1.2.3' }), { port: 65535, host: '10.1.2.3' });
  assert.equal(forwardArguments(8080, { host: '::1' }), { port: 8080, host: '::1' });
});

test('forwardArguments: AGENT_INVALID_ARGUMENT naming the field and the value', () => {
  const cases: [unknown, unknown, string][] = [
    [0, {}, 'port must be an integer 1..65535, got 0'],
    [65536, {}, 'got 65536'],
    [-80, {}, 'got -80'],
    [80.5, {}, 'got 80.5'],
    ['80', {}, 'got "80"'],
    [undefined, {}, 'got undefined'],
    [Number.NaN, {}, 'port must be'],
    [80, { host: 'localhost' }, 'host must be an IPv4 or IPv6 address, got "localhost"'],
    [80, { host: '1.2.3.256' }, 'got "1.2.3.256"'],
    [80, { host: 7 }, 'got 7'],
    [80, null, 'options must be an object, got null'],
  ];
  for (const [port, target, message] of cases) {
    try {
      forwardArguments(port, target as never);
      assert.unreachable(`${String(port)} ${JSON.stringify(target)} was accepted`);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'AGENT_INVALID_ARGUMENT', String(err));
      assert.ok((err as Error).message.includes(message), `${(err as Error).message} should include ${message}`);
    }
  }
});

test('forwardTargetName brackets IPv6', () => {
  assert.is(forwardTargetName(80), '127.0.0.1:80');
  assert.is(forwardTargetName(80, '::1'), '[::1]:80');
});

test('the EXIT payload\'s optional "error" is decoded; a non-string one is a protocol error', () => {
  const decode = (payload: object): Frame => new FrameDecoder().push(encodeFrame(FrameType.EXIT, 3, Buffer.from(JSON.stringify(payload))))[0]!;
  assert.equal((decode({ exitCode: 1, signal: null, error: 'read: Connection reset by peer' }) as any).status,
    { exitCode: 1, signal: null, error: 'read: Connection reset by peer' });
  assert.equal((decode({ exitCode: 0, signal: null }) as any).status, { exitCode: 0, signal: null });
  assert.throws(() => decode({ exitCode: 1, signal: null, error: 5 }), /"error" must be a string/);
  assert.equal(JSON.parse(encodeExit(1, { exitCode: 1, signal: null, error: 'e' }).subarray(12).toString()), { exitCode: 1, signal: null, error: 'e' });
});

async function forwardSetup(): Promise<{ client: AgentClient; conn: FakeConn }> {
  const agent = await FakeAgent.start();
  const client = await within(AgentClient.connect(agent.dial), 2000, 'connect');
  const conn = await agent.nextConnection();
  return { client, conn };
}

test('forward: bad arguments are refused unsent; the agent\'s FORWARD_FAILED comes back as is', async () => {
  const { client, conn } = await forwardSetup();
  assert.is((await rejection(client.forward(0))).code, 'AGENT_INVALID_ARGUMENT');
  assert.is((await rejection(client.request('forward', { port: 1 }))).code, 'AGENT_INVALID_ARGUMENT', 'forward has its own method');
  const p = client.forward(8080, { host: '::1' });
  const req = await conn.nextRequest('forward');
  assert.equal(req.args, { port: 8080, host: '::1' }, 'the refused requests were never sent');
  conn.fail(req.id, 'FORWARD_FAILED', 'connect to [::1]:8080: Connection refused');
  const err = await rejection(p);
  assert.is(err.code, 'FORWARD_FAILED');
  assert.is(err.message, 'connect to [::1]:8080: Connection refused');
  await client.close();
});

test('forward: a Duplex — writes become STDIN, STDOUT is read, end() is an empty STDIN, EXIT 0 ends it cleanly', async () => {
  const { client, conn } = await forwardSetup();
  const p = client.forward(80);
  const req = await conn.nextRequest('forward');
  assert.equal(req.args, { port: 80 });
  conn.reply(req.id, { process: 7 });
  const stream = await within(p);
  assert.is(stream.id, 7);
  assert.is(stream.target, '127.0.0.1:80');
  stream.write('ping');
  const stdin = await conn.next((f) => f.type === FrameType.STDIN && f.id === 7);
  assert.is((stdin as any).data.toString(), 'ping');
  conn.ack(7, 4);
  conn.send(FakeConn.stdout(7, 'pong'));
  const chunks: string[] = [];
  stream.on('data', (d) => chunks.push(String(d)));
  const ended = new Promise((r) => stream.once('end', r));
  const closed = new Promise((r) => stream.once('close', r));
  stream.end();
  const close = await conn.next((f) => f.type === FrameType.STDIN && f.id === 7);
  assert.is((close as any).data.length, 0, 'end() sends the empty STDIN frame');
  conn.send(FakeConn.stdout(7), FakeConn.exit(7, { exitCode: 0, signal: null }));
  await within(ended, 2000, 'end');
  assert.equal(chunks, ['pong']);
  assert.equal(await within(stream.ended), { exitCode: 0, signal: null });
  await within(closed, 2000, 'close');
  assert.not.ok(stream.errored);
  await client.close();
});

test('forward: EXIT with an error destroys the Duplex with FORWARD_FAILED naming the target and why', async () => {
  const { client, conn } = await forwardSetup();
  const p = client.forward(5432);
  const req = await conn.nextRequest('forward');
  conn.reply(req.id, { process: 3 });
  const stream = await within(p);
  const errored = new Promise<any>((r) => stream.once('error', r));
  conn.send(FakeConn.stdout(3), FakeConn.exit(3, { exitCode: 1, signal: null, error: 'read: Connection reset by peer' }));
  const err = await within(errored);
  assert.is(err.code, 'FORWARD_FAILED');
  assert.is(err.message, 'forward to 127.0.0.1:5432: read: Connection reset by peer');
  await client.close();
});

test('forward: destroy() asks the agent to close the guest socket (signal)', async () => {
  const { client, conn } = await forwardSetup();
  const p = client.forward(22);
  const req = await conn.nextRequest('forward');
  conn.reply(req.id, { process: 9 });
  const stream = await within(p);
  stream.destroy();
  const sig = await conn.nextRequest('signal');
  assert.equal(sig.args, { process: 9, signal: 9 });
  conn.reply(sig.id, {});
  await client.close();
});

test('forward: the connection closing destroys the Duplex with AGENT_CLOSED', async () => {
  const { client, conn } = await forwardSetup();
  const p = client.forward(22);
  const req = await conn.nextRequest('forward');
  conn.reply(req.id, { process: 4 });
  const stream = await within(p);
  const errored = new Promise<any>((r) => stream.once('error', r));
  conn.socket.destroy();
  assert.is((await within(errored)).code, 'AGENT_CLOSED');
  assert.is((await rejection(stream.ended)).code, 'AGENT_CLOSED');
  await client.close();
});

test.run();
