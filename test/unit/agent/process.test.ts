// AgentProcess through AgentClient against a scripted fake agent: exec, stdio routing, wait()
// ordering, the STDIN window, kill/resize, connection loss, attach and ordering violations.
import { constants as osConstants } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient } from '../../../src/agent/client.js';
import { AgentError } from '../../../src/agent/errors.js';
import type { AgentProcess } from '../../../src/agent/process.js';
import { encodeResponse, FrameType, STDIN_WINDOW, type DataFrame, type RequestFrame } from '../../../src/agent/protocol.js';
import { FakeAgent, FakeConn, rejection, within } from './fake-agent.js';

const { stdout, stderr, exit } = FakeConn;

async function setup(): Promise<{ agent: FakeAgent; client: AgentClient; conn: FakeConn }> {
  const agent = await FakeAgent.start();
  const client = await within(AgentClient.connect(agent.dial), 2000, 'connect');
  const conn = await agent.nextConnection();
  return { agent, client, conn };
}

async function teardown(agent: FakeAgent, client: AgentClient): Promise<void> {
  await within(client.close(), 2000, 'close');
  await agent.stop();
}

/** Starts an exec and answers it with the given process id and pid. */
async function execAs(client: AgentClient, conn: FakeConn, id: number, options: Parameters<AgentClient['exec']>[0] = { argv: ['sh'] }): Promise<{ proc: AgentProcess; req: RequestFrame }> {
  const pending = client.exec(options);
  const req = await conn.nextRequest('exec');
  conn.reply(req.id, { process: id, pid: 100 + id });
  return { proc: await within(pending, 2000, 'exec'), req };
}

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

test.after.each(() => FakeAgent.stopAll());

test('exec sends argv/env/cwd/tty/rows/cols and returns a process with the agent id and guest pid', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.exec({ argv: ['ls', '-l'], env: { A: '1', B: 'x=y' }, cwd: '/tmp', tty: true, rows: 24, cols: 80 });
  const req = await conn.nextRequest('exec');
  assert.equal(req.args, { argv: ['ls', '-l'], env: ['A=1', 'B=x=y'], cwd: '/tmp', tty: true, rows: 24, cols: 80 });
  conn.reply(req.id, { process: 4, pid: 321 });
  const proc = await within(pending);
  assert.is(proc.id, 4);
  assert.is(proc.pid, 321);
  assert.is(proc.tty, true);
  const bare = client.exec({ argv: ['true'] });
  assert.equal((await conn.nextRequest('exec')).args, { argv: ['true'] });
  void bare.catch(() => {});
  await teardown(agent, client);
});

test('exec refuses arguments the agent would mangle, naming them, without sending', async () => {
  const { agent, client, conn } = await setup();
  const cases: Array<[unknown, RegExp]> = [
    [{ argv: [] }, /argv must be a non-empty array/],
    [{ argv: ['a\0b'] }, /argv\[0\] contains a NUL/],
    [{ argv: [''] }, /argv\[0\] must not be empty/],
    [{ argv: ['x', 3] }, /argv\[1\] must be a string, got 3/],
    [{ argv: ['x'], env: ['NOEQUALS'] }, /env\[0\] must look like K=V, got "NOEQUALS"/],
    [{ argv: ['x'], env: ['=v'] }, /env\[0\] must look like K=V/],
    [{ argv: ['x'], cwd: 5 }, /cwd must be a string/],
    [{ argv: ['x'], rows: -1 }, /rows must be an integer 0..65535, got -1/],
    [{ argv: ['x'], cols: 1.5 }, /cols must be an integer 0..65535, got 1.5/],
    [{ argv: ['x'], tty: 'yes' }, /tty must be a boolean/],
  ];
  for (const [options, pattern] of cases) {
    const err = await rejection(client.exec(options as never));
    assert.is(err.code, 'AGENT_INVALID_ARGUMENT');
    assert.match(err.message, pattern);
  }
  assert.is(conn.queued.length, 0);
  await teardown(agent, client);
});

test('EXEC_FAILED from the agent rejects exec with its code and message', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.exec({ argv: ['nosuch'] });
  conn.fail((await conn.nextRequest('exec')).id, 'EXEC_FAILED', 'nosuch: No such file or directory');
  const err = await rejection(pending);
  assert.instance(err, AgentError);
  assert.is(err.code, 'EXEC_FAILED');
  assert.is(err.message, 'nosuch: No such file or directory');
  await teardown(agent, client);
});

test('stdout and stderr are separate streams; wait() resolves only after paced consumers got every chunk and the end', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 1);
  const events: string[] = [];
  void proc.wait().then((s) => events.push(`exit ${s.exitCode}`));
  // A consumer that takes 15 ms per chunk (pause/resume), on both streams.
  for (const [name, stream] of [['out', proc.stdout], ['err', proc.stderr]] as const) {
    stream.on('data', (chunk: Buffer) => {
      events.push(`${name} ${chunk.toString()}`);
      stream.pause();
      setTimeout(() => stream.resume(), 15);
    });
    stream.on('end', () => events.push(`${name} end`));
  }
  // Everything in one write: EXIT arrives together with the data it must not overtake.
  conn.send(stdout(1, 'a'), stdout(1, 'b'), stderr(1, 'E'), stdout(1, 'c'), stdout(1), stderr(1), exit(1, { exitCode: 3, signal: null }));
  assert.equal(await within(proc.wait()), { exitCode: 3, signal: null });
  assert.is(events.at(-1), 'exit 3', events.join(' | '));
  assert.equal(events.filter((e) => e.startsWith('out')), ['out a', 'out b', 'out c', 'out end']);
  assert.equal(events.filter((e) => e.startsWith('err')), ['err E', 'err end']);
  assert.ok(proc.exited);
  await teardown(agent, client);
});

test('for await over stdout, then await wait(): all output seen, then the status', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 17);
  conn.send(stdout(17, 'one\n'), stderr(17, 'warn\n'), stdout(17, 'two\n'), stdout(17), stderr(17), exit(17, { exitCode: 0, signal: null }));
  const [out, err] = await within(Promise.all([collect(proc.stdout), collect(proc.stderr)]));
  assert.is(out, 'one\ntwo\n');
  assert.is(err, 'warn\n');
  assert.equal(await within(proc.wait()), { exitCode: 0, signal: null });
  await teardown(agent, client);
});

test('wait() may be called many times and reports a signal', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 2);
  conn.send(stdout(2), stderr(2), exit(2, { exitCode: null, signal: 'SIGKILL' }));
  const results = await within(Promise.all([proc.wait(), proc.wait(), proc.wait()]));
  for (const r of results) assert.equal(r, { exitCode: null, signal: 'SIGKILL' });
  assert.equal(await proc.wait(), { exitCode: null, signal: 'SIGKILL' });
  await teardown(agent, client);
});

test('wait() does not hang when nobody reads stdout', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 3);
  conn.send(stdout(3, 'unread output'), stdout(3), stderr(3), exit(3, { exitCode: 0, signal: null }));
  assert.equal(await within(proc.wait()), { exitCode: 0, signal: null });
  assert.is(await collect(proc.stdout), 'unread output'); // still there afterwards
  await teardown(agent, client);
});

test('a TTY process has an empty stderr at once; a STDERR frame for it is a protocol error', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 5, { argv: ['sh'], tty: true });
  assert.is(await within(collect(proc.stderr)), '');
  conn.send(stdout(5, 'tty text'));
  conn.send(stderr(5, 'x'));
  const err = await rejection(proc.wait());
  assert.is(err.code, 'AGENT_PROTOCOL');
  assert.match(err.message, /STDERR frame for process 5, which is a TTY process/);
  assert.is(await collect(proc.stdout), 'tty text');
  await agent.stop();
});

test('output sent before the exec RESPONSE is delivered to the process', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.exec({ argv: ['echo', 'early'] });
  const req = await conn.nextRequest('exec');
  conn.send(stdout(8, 'early\n'), stdout(8), stderr(8), encodeResponse(req.id, { ok: true, result: { process: 8, pid: 42 } }), exit(8, { exitCode: 0, signal: null }));
  const proc = await within(pending);
  assert.is(await within(collect(proc.stdout)), 'early\n');
  assert.equal(await within(proc.wait()), { exitCode: 0, signal: null });
  await teardown(agent, client);
});

test('EXIT before the end of stdout is a protocol error: wait() rejects AGENT_PROTOCOL', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 6);
  conn.send(stdout(6, 'partial'), stderr(6), exit(6, { exitCode: 0, signal: null }));
  const err = await rejection(proc.wait());
  assert.is(err.code, 'AGENT_PROTOCOL');
  assert.match(err.message, /EXIT frame for process 6 before the end of its stdout/);
  await agent.stop();
});

test('data after the end of stdout is a protocol error', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 7);
  conn.send(stdout(7), stdout(7, 'more'));
  const err = await rejection(proc.wait());
  assert.match(err.message, /STDOUT frame for process 7 after the end of its stdout/);
  await agent.stop();
});

test('a stream frame for a process nobody started is a protocol error', async () => {
  const { agent, client, conn } = await setup();
  conn.send(stdout(99, 'who?'));
  const reason = await within(client.closed);
  assert.is(reason.code, 'AGENT_PROTOCOL');
  assert.match(reason.message, /STDOUT frame for process 99, which is not attached/);
  await agent.stop();
});

test('stdin data goes out as STDIN frames; an empty write sends nothing; end() sends the empty frame', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 9);
  proc.stdin.write('hello ');
  proc.stdin.write(Buffer.alloc(0));
  proc.stdin.write('world');
  proc.stdin.end();
  const frames: DataFrame[] = [];
  for (;;) {
    const f = await conn.next<DataFrame>((x) => x.type === FrameType.STDIN);
    frames.push(f);
    if (f.data.length === 0) break;
  }
  assert.is(Buffer.concat(frames.map((f) => f.data)).toString(), 'hello world');
  assert.ok(frames.slice(0, -1).every((f) => f.data.length > 0 && f.id === 9));
  assert.is(frames.length, 3);
  await teardown(agent, client);
});

test('stdin keeps at most 256 KiB unacknowledged and resumes once a quarter of it is acknowledged', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 10);
  const total = 1024 * 1024 + 123;
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = (i * 7) & 0xff;
  let finished = false;
  proc.stdin.end(data, () => (finished = true));
  const sent = () => conn.stdinBytes.get(10) ?? 0;
  const settle = () => new Promise((r) => setTimeout(r, 50));
  await settle();
  assert.is(sent(), STDIN_WINDOW, 'stops at the window without ACKs');
  await settle();
  assert.is(sent(), STDIN_WINDOW, 'still stopped');
  conn.ack(10, 1000);
  await settle();
  assert.is(sent(), STDIN_WINDOW, 'a small ACK does not make a small frame while more waits');
  conn.ack(10, STDIN_WINDOW / 4 - 1000);
  await settle();
  assert.is(sent(), STDIN_WINDOW + STDIN_WINDOW / 4, 'a quarter of the window open: exactly that much goes');
  assert.not.ok(finished);
  // Acknowledge as the bytes arrive until all are through (the tail, under a quarter, goes at once).
  let acked = STDIN_WINDOW / 4;
  for (let rounds = 0; sent() < total && rounds < 100; rounds++) {
    conn.ack(10, sent() - acked);
    acked = sent();
    await settle();
  }
  assert.is(sent(), total);
  const close = await conn.next<DataFrame>((f) => f.type === FrameType.STDIN && f.data.length === 0);
  assert.is(close.id, 10);
  assert.ok(Buffer.concat(conn.stdinData.get(10)!).equals(data));
  assert.ok(finished);
  await teardown(agent, client);
});

test('kill maps signal names to Linux numbers; numbers pass; unknown names are refused locally', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 11);
  const cases: Array<[NodeJS.Signals | number | undefined, number]> = [
    [undefined, osConstants.signals.SIGTERM],
    ['SIGKILL', 9],
    ['SIGINT', 2],
    [10, 10],
  ];
  for (const [signal, number] of cases) {
    const p = signal === undefined ? proc.kill() : proc.kill(signal);
    const req = await conn.nextRequest('signal');
    assert.equal(req.args, { process: 11, signal: number });
    conn.reply(req.id, {});
    await within(p);
  }
  const bad = await rejection(proc.kill('SIGNOPE' as NodeJS.Signals));
  assert.is(bad.code, 'AGENT_INVALID_ARGUMENT');
  const badNumber = await rejection(proc.kill(99));
  assert.is(badNumber.code, 'AGENT_INVALID_ARGUMENT');
  assert.is(conn.queued.filter((f) => f.type === FrameType.REQUEST).length, 0);
  await teardown(agent, client);
});

test('kill after EXIT sends nothing', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 12);
  conn.send(stdout(12), stderr(12), exit(12, { exitCode: 0, signal: null }));
  await within(proc.wait());
  await within(proc.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 30));
  assert.is(conn.queued.filter((f) => f.type === FrameType.REQUEST).length, 0);
  await teardown(agent, client);
});

test('resize sends rows and cols; BAD_REQUEST from the agent is passed on; bad sizes are refused', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 13, { argv: ['sh'], tty: true });
  const p = proc.resize(50, 132);
  const req = await conn.nextRequest('resize');
  assert.equal(req.args, { process: 13, rows: 50, cols: 132 });
  conn.fail(req.id, 'BAD_REQUEST', 'process 13 is not a TTY');
  const err = await rejection(p);
  assert.is(err.code, 'BAD_REQUEST');
  assert.is((await rejection(proc.resize(-1, 80))).code, 'AGENT_INVALID_ARGUMENT');
  assert.is((await rejection(proc.resize(24, 70000))).code, 'AGENT_INVALID_ARGUMENT');
  await teardown(agent, client);
});

test('connection loss before EXIT: streams end with what arrived, wait() rejects AGENT_CLOSED, stdin is destroyed', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 14);
  conn.send(stdout(14, 'some'));
  await new Promise((r) => setTimeout(r, 20));
  conn.socket.destroy();
  const err = await rejection(proc.wait());
  assert.is(err.code, 'AGENT_CLOSED');
  assert.is(await within(collect(proc.stdout)), 'some');
  assert.is(await within(collect(proc.stderr)), '');
  assert.ok(proc.stdin.destroyed);
  await agent.stop();
});

test('connection loss after EXIT: wait() still resolves', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 15);
  conn.send(stdout(15, 'all'), stdout(15), stderr(15), exit(15, { exitCode: 1, signal: null }));
  await new Promise((r) => setTimeout(r, 20));
  conn.socket.destroy();
  await within(client.closed);
  assert.equal(await within(proc.wait()), { exitCode: 1, signal: null });
  assert.is(await collect(proc.stdout), 'all');
  await agent.stop();
});

test('writes to stdin after EXIT fail in their callback without an error event', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 16);
  let errorEvents = 0;
  proc.stdin.on('error', () => errorEvents++);
  conn.send(stdout(16), stderr(16), exit(16, { exitCode: 0, signal: null }));
  await within(proc.wait());
  const result = await new Promise<Error | null | undefined>((resolve) => proc.stdin.write('late', resolve));
  assert.ok(result instanceof Error);
  await new Promise((r) => setTimeout(r, 10));
  assert.is(errorEvents, 0);
  await teardown(agent, client);
});

test('attach routes output flushed before its response; EXIT ends streams still open', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.attach(21);
  const req = await conn.nextRequest('attach');
  assert.equal(req.args, { process: 21 });
  conn.send(stdout(21, 'buffered while detached'), encodeResponse(req.id, { ok: true, result: {} }), exit(21, { exitCode: 0, signal: null }));
  const proc = await within(pending);
  assert.is(proc.id, 21);
  assert.is(proc.pid, 0);
  assert.is(await within(collect(proc.stdout)), 'buffered while detached');
  assert.is(await within(collect(proc.stderr)), '');
  assert.equal(await within(proc.wait()), { exitCode: 0, signal: null });
  const again = await rejection(client.attach(0));
  assert.is(again.code, 'AGENT_INVALID_ARGUMENT');
  await teardown(agent, client);
});

test('attach of an unknown process rejects NOT_FOUND; attaching one already attached is AGENT_BUSY', async () => {
  const { agent, client, conn } = await setup();
  const missing = client.attach(30);
  conn.fail((await conn.nextRequest('attach')).id, 'NOT_FOUND', 'no process 30');
  const err = await rejection(missing);
  assert.is(err.code, 'NOT_FOUND');
  const { proc } = await execAs(client, conn, 31);
  const busy = await rejection(client.attach(proc.id));
  assert.is(busy.code, 'AGENT_BUSY');
  await teardown(agent, client);
});

test('an exec the caller gave up on is killed when its late answer arrives, and its output dropped', async () => {
  const { agent, client, conn } = await setup();
  const controller = new AbortController();
  const pending = client.exec({ argv: ['sleep', '100'] }, { signal: controller.signal });
  const req = await conn.nextRequest('exec');
  controller.abort();
  assert.is((await rejection(pending)).code, 'AGENT_ABORTED');
  conn.send(stdout(40, 'orphan output'), encodeResponse(req.id, { ok: true, result: { process: 40, pid: 4000 } }));
  const kill = await conn.nextRequest('signal');
  assert.equal(kill.args, { process: 40, signal: 9 });
  conn.reply(kill.id, {});
  conn.send(stdout(40, 'more'), stdout(40), stderr(40), exit(40, { exitCode: null, signal: 'SIGKILL' }));
  const ping = client.request('ping');
  conn.reply((await conn.nextRequest('ping')).id, {});
  await within(ping);
  assert.is(client.closeReason, null, 'dropped output is not a protocol error');
  await teardown(agent, client);
});

test('a STDIN_ACK after EXIT is ignored (the agent may acknowledge after the exit)', async () => {
  const { agent, client, conn } = await setup();
  const { proc } = await execAs(client, conn, 50);
  conn.send(stdout(50), stderr(50), exit(50, { exitCode: 0, signal: null }));
  conn.ack(50, 10);
  await within(proc.wait());
  const ping = client.request('ping');
  conn.reply((await conn.nextRequest('ping')).id, {});
  await within(ping);
  assert.is(client.closeReason, null);
  await teardown(agent, client);
});

test('an attach the caller gave up on: output the agent flushes afterwards is dropped', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.attach(60, { timeoutMs: 30 });
  const req = await conn.nextRequest('attach');
  assert.is((await rejection(pending)).code, 'AGENT_TIMEOUT');
  conn.send(encodeResponse(req.id, { ok: true, result: {} }), stdout(60, 'nobody listens'), stdout(60), stderr(60), exit(60, { exitCode: 0, signal: null }));
  const ping = client.request('ping');
  conn.reply((await conn.nextRequest('ping')).id, {});
  await within(ping);
  assert.is(client.closeReason, null);
  await teardown(agent, client);
});

test('attach also sends wait: its answer supplies the status when EXIT went to an earlier connection', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.attach(70);
  conn.reply((await conn.nextRequest('attach')).id, {});
  const proc = await within(pending);
  const wait = await conn.nextRequest('wait');
  assert.equal(wait.args, { process: 70 });
  conn.send(stdout(70, 'tail of the output'), encodeResponse(wait.id, { ok: true, result: { exitCode: 4, signal: null } }));
  assert.equal(await within(proc.wait()), { exitCode: 4, signal: null });
  assert.is(await within(collect(proc.stdout)), 'tail of the output');
  assert.is(client.closeReason, null);
  await teardown(agent, client);
});

test('attach: a wait answered NOT_FOUND (collected elsewhere) makes wait() reject with it', async () => {
  const { agent, client, conn } = await setup();
  const pending = client.attach(71);
  conn.reply((await conn.nextRequest('attach')).id, {});
  const proc = await within(pending);
  conn.fail((await conn.nextRequest('wait')).id, 'NOT_FOUND', 'no process 71');
  const err = await rejection(proc.wait());
  assert.is(err.code, 'NOT_FOUND');
  assert.is(await within(collect(proc.stdout)), '');
  await teardown(agent, client);
});

test.run();
