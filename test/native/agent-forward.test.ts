// The guest agent's `forward` op (docs/agent-protocol.md, "Port forwarding") in its host test mode,
// `vc-agent --serve-unix PATH`: the agent connects to TCP servers this test makes on the host's
// loopback, and the socket is a process-like stream (STDIN -> socket, socket -> STDOUT, EXIT).
// The wire codec is agent-wire.ts, independent of src/agent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Conn, encode, startAgent, T, type ProcEvents, type RunningAgent } from './agent-wire.js';

let dir = '';
let agent: RunningAgent | undefined;
const servers: Server[] = [];

const hello = () => Conn.hello(agent!.sockPath);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP server on 127.0.0.1 (or `host`); `onConn` gets each accepted socket (half-open allowed). */
async function server(onConn: (s: Socket) => void, host = '127.0.0.1'): Promise<{ port: number; sockets: Socket[]; server: Server }> {
  const sockets: Socket[] = [];
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    onConn(s);
  });
  servers.push(srv);
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  return { port: (srv.address() as AddressInfo).port, sockets, server: srv };
}

const echo = (s: Socket) => s.pipe(s); // ends its side when the peer has ended its own

/** Sends `data` as STDIN frames within the protocol's 256 KiB window, then (optionally) closes stdin. */
async function sendStdin(c: Conn, id: number, data: Buffer, close = true): Promise<void> {
  const p = c.proc(id);
  const chunk = 64 << 10, window = 256 << 10;
  for (let off = 0; off < data.length; off += chunk) {
    const part = data.subarray(off, off + chunk);
    await c.until(() => off - p.acked + part.length <= window, 'stdin window', 20000);
    c.send(encode(T.STDIN, id, part));
  }
  if (close) c.send(encode(T.STDIN, id));
}

async function forward(c: Conn, port: number, host?: string): Promise<number> {
  const r = await c.ok('forward', host === undefined ? { port } : { port, host });
  assert.ok(Number.isInteger(r.process) && r.process > 0, JSON.stringify(r));
  assert.equal(Object.keys(r), ['process']);
  return r.process;
}

const out = (p: ProcEvents) => Buffer.concat(p.stdout);

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vc-agent-forward-'));
  agent = await startAgent(dir);
});

test.after(async () => {
  for (const s of servers) s.close();
  agent?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('echo both ways: STDIN reaches the server, its answer comes back as STDOUT, then end, then EXIT 0', async () => {
  const srv = await server(echo);
  const c = await hello();
  const id = await forward(c, srv.port);
  c.send(encode(T.STDIN, id, 'hello through the agent\n'));
  const p = c.proc(id);
  await c.until(() => out(p).toString() === 'hello through the agent\n', 'the echo');
  assert.is(p.exit, undefined, 'no EXIT while both directions are open');
  await c.until(() => p.acked === 24, 'STDIN_ACK of 24 bytes');
  c.send(encode(T.STDIN, id)); // half-close: the echo server then ends its side too
  await c.finished(id);
  assert.equal(p.exit, { exitCode: 0, signal: null });
  assert.equal(p.order.slice(-2), ['out-end', 'exit']);
  assert.ok(!p.order.includes('err') && !p.order.includes('err-end'), 'no STDERR frames for a forward');
  assert.is((await c.errorCode('wait', { process: id })).code, 'NOT_FOUND', 'collected with its EXIT');
  c.close();
});

test('the guest side closes first: its end comes through, the host can still send; EXIT once the host closes too', async () => {
  let received = '';
  let serverSawEnd = false;
  const srv = await server((s) => {
    s.end('bye from the server\n'); // half-close: keeps reading
    s.on('data', (d) => { received += d; });
    s.on('end', () => { serverSawEnd = true; });
  });
  const c = await hello();
  const id = await forward(c, srv.port);
  const p = c.proc(id);
  await c.until(() => p.stdoutEnded, 'the end of STDOUT');
  assert.is(out(p).toString(), 'bye from the server\n');
  await sleep(200);
  assert.is(p.exit, undefined, 'the host side is still open, so no EXIT yet');
  c.send(encode(T.STDIN, id, 'late words'));
  c.send(encode(T.STDIN, id));
  await c.finished(id);
  assert.equal(p.exit, { exitCode: 0, signal: null });
  await c.until(() => serverSawEnd, 'the server reading its end of file');
  assert.is(received, 'late words');
  c.close();
});

test('the host side closes first: the server reads its end of file and still answers', async () => {
  const srv = await server((s) => {
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.on('end', () => s.end(`got ${Buffer.concat(got).length} bytes: ${Buffer.concat(got)}`));
  });
  const c = await hello();
  const id = await forward(c, srv.port);
  c.send(encode(T.STDIN, id, 'question'));
  c.send(encode(T.STDIN, id));
  const p = await c.finished(id);
  assert.is(out(p).toString(), 'got 8 bytes: question');
  assert.equal(p.exit, { exitCode: 0, signal: null });
  c.close();
});

test('large transfers both ways (16 MiB each) arrive complete, within the stdin window', async () => {
  const up = randomBytes(16 << 20);
  const down = randomBytes(16 << 20);
  let upHash = '';
  const srv = await server((s) => {
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => { h.update(d); n += d.length; });
    s.on('end', () => { upHash = `${n}:${h.digest('hex')}`; });
    s.end(down);
  });
  const c = await hello();
  const id = await forward(c, srv.port);
  await sendStdin(c, id, up);
  const p = await c.finished(id);
  assert.is(p.acked, up.length, 'every stdin byte acknowledged');
  await c.until(() => upHash !== '', 'the server reading its end of file');
  assert.is(upHash, `${up.length}:${sha(up)}`);
  const got = out(p);
  assert.is(got.length, down.length);
  assert.is(sha(got), sha(down));
  assert.equal(p.exit, { exitCode: 0, signal: null });
  c.close();
});

test('flow control: a host that does not read stops the agent reading the socket; nothing is lost', async () => {
  const total = 64 << 20;
  const data = randomBytes(total);
  let finished = false;
  const srv = await server((s) => {
    s.end(data, () => { finished = true; });
  });
  const c = await hello();
  const id = await forward(c, srv.port);
  c.sock.pause(); // the host stops reading its agent connection
  await sleep(1500);
  assert.not.ok(finished, 'the server could write all 64 MiB although nobody read them: no backpressure');
  c.sock.resume();
  c.send(encode(T.STDIN, id));
  const p = await c.finished(id);
  const got = out(p);
  assert.is(got.length, total);
  assert.is(sha(got), sha(data));
  assert.ok(finished);
  c.close();
});

test('a closed port is FORWARD_FAILED naming the address, port and errno text', async () => {
  const srv = await server(echo);
  const port = srv.port;
  await new Promise((r) => srv.server.close(r));
  const c = await hello();
  const e = await c.errorCode('forward', { port });
  assert.is(e.code, 'FORWARD_FAILED');
  assert.match(e.message, `127.0.0.1:${port}`);
  assert.match(e.message, 'Connection refused');
  // the connection is still usable
  const srv2 = await server(echo);
  const id = await forward(c, srv2.port);
  c.send(encode(T.STDIN, id, 'x'));
  c.send(encode(T.STDIN, id));
  assert.is(out(await c.finished(id)).toString(), 'x');
  c.close();
});

test('bad arguments are BAD_REQUEST naming the argument and the value', async () => {
  const c = await hello();
  for (const [args, name, value] of [
    [{}, 'port', 'missing'],
    [{ port: 0 }, 'port', '0'],
    [{ port: 65536 }, 'port', '65536'],
    [{ port: -1 }, 'port', '-1'],
    [{ port: 80.5 }, 'port', '80.5'],
    [{ port: '80' }, 'port', '"80"'],
    [{ port: 80, host: 'localhost' }, 'host', '"localhost"'],
    [{ port: 80, host: '10.0.0.300' }, 'host', '"10.0.0.300"'],
    [{ port: 80, host: 5 }, 'host', '5'],
  ] as const) {
    const e = await c.errorCode('forward', args);
    assert.is(e.code, 'BAD_REQUEST', JSON.stringify(args));
    assert.ok(e.message.startsWith(`${name}: `), e.message);
    assert.ok(e.message.includes(value), `${e.message} should quote ${value}`);
  }
  c.close();
});

test('IPv6: host ::1 reaches a server on the IPv6 loopback', async () => {
  let srv;
  try {
    srv = await server(echo, '::1');
  } catch {
    console.log('  (no IPv6 loopback on this host: checked that the agent accepts the address only)');
    const c = await hello();
    const e = await c.errorCode('forward', { port: 1, host: '::1' });
    assert.is(e.code, 'FORWARD_FAILED');
    assert.match(e.message, '[::1]:1');
    c.close();
    return;
  }
  const c = await hello();
  const id = await forward(c, srv.port, '::1');
  c.send(encode(T.STDIN, id, 'six'));
  c.send(encode(T.STDIN, id));
  assert.is(out(await c.finished(id)).toString(), 'six');
  c.close();
});

test('50 forwards at once on one connection, each with its own data', async () => {
  const srv = await server(echo);
  const c = await hello();
  const ids = await Promise.all(Array.from({ length: 50 }, () => forward(c, srv.port)));
  assert.is(new Set(ids).size, 50, 'distinct process ids');
  const payloads = ids.map((id, i) => Buffer.from(`forward ${i} (process ${id}) `.repeat(1000 + i)));
  await Promise.all(ids.map((id, i) => sendStdin(c, id, payloads[i]!)));
  for (const [i, id] of ids.entries()) {
    const p = await c.finished(id);
    assert.is(sha(out(p)), sha(payloads[i]!), `forward ${i}`);
    assert.equal(p.exit, { exitCode: 0, signal: null });
  }
  assert.is(srv.sockets.length, 50);
  c.close();
});

test('`signal` closes the socket: the server sees it, EXIT names the signal', async () => {
  let closed = false; // the server's read side ended: the agent closed the socket
  const srv = await server((s) => s.on('end', () => { closed = true; }));
  const c = await hello();
  const id = await forward(c, srv.port);
  assert.equal(await c.ok('signal', { process: id, signal: 0 }), {}, 'signal 0 is only a check');
  await sleep(100);
  assert.not.ok(closed);
  assert.equal(await c.ok('signal', { process: id, signal: 15 }), {});
  const p = await c.finished(id);
  assert.equal(p.exit, { exitCode: null, signal: 'SIGTERM' });
  assert.equal(p.order, ['out-end', 'exit']);
  await c.until(() => closed, 'the server seeing the close');
  c.close();
});

test('a reset by the server is EXIT 1 with the error', async () => {
  const srv = await server((s) => { s.write('partial'); setTimeout(() => s.resetAndDestroy(), 100); });
  const c = await hello();
  const id = await forward(c, srv.port);
  const p = await c.finished(id);
  assert.is(out(p).toString(), 'partial');
  assert.is((p.exit as any).exitCode, 1);
  assert.is((p.exit as any).signal, null);
  assert.match((p.exit as any).error, /reset/i);
  c.close();
});

test('the host connection going away closes its forwards; other connections keep theirs', async () => {
  const closes: number[] = [];
  const srv = await server((s) => { echo(s); s.on('close', () => closes.push(srv.sockets.indexOf(s))); });
  const a = await hello();
  const b = await hello();
  const ia = await forward(a, srv.port);
  const ib = await forward(b, srv.port);
  a.close();
  await new Promise<void>(async (resolve, reject) => {
    const deadline = Date.now() + 5000;
    while (!closes.includes(0)) {
      if (Date.now() > deadline) return reject(new Error('the server never saw the forward of the closed connection go'));
      await sleep(20);
    }
    resolve();
  });
  assert.not.ok(closes.includes(1), 'the other connection\'s forward is untouched');
  // A later connection cannot attach the closed forward: it is forgotten.
  assert.is((await b.errorCode('attach', { process: ia })).code, 'NOT_FOUND');
  b.send(encode(T.STDIN, ib, 'still here'));
  await b.until(() => out(b.proc(ib)).toString() === 'still here', 'the echo on the other connection');
  b.send(encode(T.STDIN, ib));
  assert.equal((await b.finished(ib)).exit, { exitCode: 0, signal: null });
  b.close();
});

test('a connect that gets no answer times out after 15 s with FORWARD_FAILED; the agent keeps serving meanwhile', async () => {
  // A listener whose accept queue is full and never drained: the kernel drops further SYNs.
  const py = spawn('python3', ['-c', [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]',
    'held = []',
    'for _ in range(3):',
    '  c = socket.socket(); c.setblocking(False)',
    '  try: c.connect(("127.0.0.1", port))',
    '  except BlockingIOError: pass',
    '  held.append(c); time.sleep(0.1)',
    'print(port, flush=True)',
    'time.sleep(60)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = Number((await new Promise<Buffer>((resolve) => py.stdout!.once('data', resolve))).toString().trim());
    assert.ok(port > 0);
    const c = await hello();
    const started = Date.now();
    const pending = c.request('forward', { port });
    assert.type((await c.ok('guest_info')).kernelRelease, 'string');
    assert.ok(Date.now() - started < 2000, 'other requests are answered while a connect is pending');
    const r = await pending;
    const took = Date.now() - started;
    assert.is(r.ok, false, JSON.stringify(r));
    assert.is(r.error.code, 'FORWARD_FAILED');
    assert.match(r.error.message, `127.0.0.1:${port}`);
    assert.match(r.error.message, 'timed out after 15 s');
    assert.ok(took >= 14000 && took < 20000, `answered after ${took} ms`);
    c.close();
  } finally {
    py.kill('SIGKILL');
  }
});

test.run();
