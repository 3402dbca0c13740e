// The ttrpc server and client over real Unix sockets: routing by service/method, gRPC status codes,
// metadata and timeouts, concurrent calls, and what malformed input does to a connection (it is
// closed with a clear error; the server keeps serving everyone else).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { common } from '../../../../src/shim/proto/messages.js';
import { TtrpcClient, unixSocketPath } from '../../../../src/shim/ttrpc/client.js';
import { RpcError, StatusCode, TtrpcError } from '../../../../src/shim/ttrpc/errors.js';
import { encodeFrame, FrameDecoder, FrameFlag, FrameType, HEADER_LENGTH, MAX_DATA_LENGTH } from '../../../../src/shim/ttrpc/frame.js';
import { TtrpcServer, type CallContext } from '../../../../src/shim/ttrpc/server.js';
import { prng } from '../../../helpers/prng.js';
import { tempDir } from '../../../helpers/tmp.js';

const dir = tempDir('vc-ttrpc');
const path = join(dir.path, 'shim.sock');
const errors: Error[] = [];
const server = new TtrpcServer({ onError: (err) => errors.push(err), maxCallsPerConnection: 4 });
const SVC = 'test.v1.Echo';
const release: Array<() => void> = [];
let lastCall: CallContext | null = null;

server.register(SVC, {
  Echo: (payload, call) => {
    lastCall = call;
    return payload;
  },
  Fail: (payload) => {
    const [code, message] = JSON.parse(payload.toString()) as [number, string];
    throw new RpcError(code, message);
  },
  Crash: () => {
    throw new TypeError('handler bug');
  },
  // Answers when the test says so (`release` has one function per call held), or with the reason
  // its signal aborted (and is then no longer held).
  Hold: (payload, call) => new Promise<Uint8Array>((resolve, reject) => {
    const answer = (): void => resolve(payload);
    release.push(answer);
    call.signal.addEventListener('abort', () => {
      if (release.includes(answer)) release.splice(release.indexOf(answer), 1);
      reject(call.signal.reason as Error);
    });
  }),
  Huge: () => Buffer.alloc(MAX_DATA_LENGTH),
});

test.before(async () => {
  await server.listen(path);
});
test.after(async () => {
  await server.close();
  dir.remove();
});

const call = (client: TtrpcClient, method: string, body: string | Buffer, options = {}) =>
  client.call(SVC, method, Buffer.isBuffer(body) ? body : Buffer.from(body), options);

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** A raw connection: send bytes, collect the frames that come back, see it close. */
function rawConnection(): Promise<{ socket: Socket; frames: Array<{ streamId: number; type: number; status: number | undefined; message: string }>; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const decoder = new FrameDecoder();
    const frames: Array<{ streamId: number; type: number; status: number | undefined; message: string }> = [];
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.on('data', (chunk) => {
      for (const f of decoder.push(chunk)) {
        const response = common.Response.decode(f.data);
        frames.push({ streamId: f.streamId, type: f.type, status: response.status?.code, message: response.status?.message ?? '' });
      }
    });
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, frames, closed }));
    socket.once('error', reject);
  });
}

const requestFrame = (streamId: number, service: string, method: string, flags = 0): Buffer =>
  encodeFrame({ streamId, type: FrameType.Request, flags, data: common.Request.encode({ service, method, payload: Buffer.from('x') }) });

test('the socket is 0600 and a call round-trips its payload and metadata', async () => {
  assert.is(statSync(path).mode & 0o777, 0o600);
  const client = await TtrpcClient.connect(`unix://${path}`);
  const answer = await call(client, 'Echo', 'hello', { metadata: { 'containerd-namespace-ttrpc': 'default', multi: ['a', 'b'] }, timeoutMs: 2500 });
  assert.is(answer.toString(), 'hello');
  assert.is(lastCall!.service, SVC);
  assert.is(lastCall!.method, 'Echo');
  assert.equal({ ...lastCall!.metadata }, { 'containerd-namespace-ttrpc': ['default'], multi: ['a', 'b'] });
  assert.is(lastCall!.timeoutNano, 2_500_000_000);
  assert.is((await call(client, 'Echo', Buffer.alloc(0))).length, 0);
  client.close();
});

test('RpcError statuses reach the caller unchanged; other exceptions are Internal and reported', async () => {
  const client = await TtrpcClient.connect(path);
  for (const [code, message] of [[StatusCode.NotFound, 'task c1 not found'], [StatusCode.AlreadyExists, 'task c1 exists'],
    [StatusCode.FailedPrecondition, 'task c1 is running'], [StatusCode.InvalidArgument, 'bad id'], [StatusCode.Unimplemented, 'no checkpoints']] as const) {
    const err = await rejection(call(client, 'Fail', JSON.stringify([code, message])));
    assert.instance(err, RpcError);
    assert.is((err as RpcError).status, code);
    assert.is(err.message, message);
  }
  errors.length = 0;
  const err = await rejection(call(client, 'Crash', ''));
  assert.is((err as RpcError).status, StatusCode.Internal);
  assert.match(err.message, /test\.v1\.Echo\/Crash: handler bug/);
  assert.is(errors.length, 1);
  assert.match(errors[0]!.message, /handler test\.v1\.Echo\/Crash failed: handler bug/);
  assert.is((await call(client, 'Echo', 'still up')).toString(), 'still up');
  client.close();
});

test('unknown services and methods are Unimplemented, naming which', async () => {
  const client = await TtrpcClient.connect(path);
  const noMethod = await rejection(call(client, 'Nope', ''));
  assert.is((noMethod as RpcError).status, StatusCode.Unimplemented);
  assert.is(noMethod.message, 'method test.v1.Echo/Nope is not implemented');
  const noService = await rejection(client.call('other.Svc', 'Echo', Buffer.alloc(0)));
  assert.is((noService as RpcError).status, StatusCode.Unimplemented);
  assert.is(noService.message, 'service other.Svc is not implemented');
  client.close();
});

test('calls run concurrently and are answered on their own streams, in any order', async () => {
  const client = await TtrpcClient.connect(path);
  const held = [call(client, 'Hold', 'first'), call(client, 'Hold', 'second')];
  const quick = await call(client, 'Echo', 'quick');
  assert.is(quick.toString(), 'quick');
  await waitFor(() => release.length === 2);
  release.splice(0).reverse().forEach((r) => r());
  assert.equal((await Promise.all(held)).map(String), ['first', 'second']);
  client.close();
});

test('the caller\'s timeout: the handler\'s signal aborts and the answer is DeadlineExceeded; the client gives up on its own', async () => {
  const client = await TtrpcClient.connect(path);
  // Server side: timeout_nano is 50 ms, the client waits longer than that (no local timer).
  const raw = await rawConnection();
  raw.socket.write(encodeFrame({ streamId: 1, type: FrameType.Request, data: common.Request.encode({ service: SVC, method: 'Hold', payload: Buffer.from('x'), timeoutNano: 50e6 }) }));
  await waitFor(() => raw.frames.length === 1);
  assert.is(raw.frames[0]!.status, StatusCode.DeadlineExceeded);
  assert.match(raw.frames[0]!.message, /Hold: .*timeout passed/);
  raw.socket.destroy();
  assert.is(release.length, 0);
  // Client side: its own timer rejects with TTRPC_TIMEOUT.
  const err = await rejection(call(client, 'Hold', 'x', { timeoutMs: 30 }));
  assert.is((err as TtrpcError).code, 'TTRPC_TIMEOUT');
  await waitFor(() => release.length === 0); // the server's own timer (the same 30 ms) ended it
  // An AbortSignal ends a call too.
  const controller = new AbortController();
  const pending = call(client, 'Hold', 'x', { signal: controller.signal });
  controller.abort();
  assert.is(((await rejection(pending)) as TtrpcError).code, 'TTRPC_ABORTED');
  await waitFor(() => release.length === 1); // the server got it all the same
  release.splice(0).forEach((r) => r()); // and its late answer is dropped by the client
  assert.is((await call(client, 'Echo', 'after')).toString(), 'after');
  client.close();
});

test('a closed connection aborts its running calls and fails the client\'s pending ones', async () => {
  const client = await TtrpcClient.connect(path);
  const pending = call(client, 'Hold', 'x');
  await waitFor(() => release.length === 1);
  client.close();
  assert.is(((await rejection(pending)) as TtrpcError).code, 'TTRPC_CLOSED');
  assert.is(((await rejection(call(client, 'Echo', 'x'))) as TtrpcError).code, 'TTRPC_CLOSED');
  await waitFor(() => release.length === 0); // the server aborted the handler
});

test('more calls at once than allowed on one connection are ResourceExhausted; an answer over 4 MiB too', async () => {
  const client = await TtrpcClient.connect(path);
  const held = [1, 2, 3, 4].map(() => call(client, 'Hold', 'x'));
  await waitFor(() => release.length === 4);
  const err = await rejection(call(client, 'Echo', 'x'));
  assert.is((err as RpcError).status, StatusCode.ResourceExhausted);
  release.splice(0).forEach((r) => r());
  await Promise.all(held);
  const huge = await rejection(call(client, 'Huge', ''));
  assert.is((huge as RpcError).status, StatusCode.ResourceExhausted);
  assert.match(huge.message, /exceeds the 4194304-byte ttrpc limit/);
  client.close();
});

test('even stream ids, undecodable requests and streaming requests are answered with an error status', async () => {
  const raw = await rawConnection();
  raw.socket.write(requestFrame(2, SVC, 'Echo'));
  raw.socket.write(encodeFrame({ streamId: 3, type: FrameType.Request, data: Buffer.from([0x0a, 0x05, 0x41]) }));
  raw.socket.write(requestFrame(5, SVC, 'Echo', FrameFlag.RemoteOpen));
  raw.socket.write(encodeFrame({ streamId: 5, type: FrameType.Data, flags: FrameFlag.RemoteClosed, data: Buffer.from('ignored') }));
  raw.socket.write(requestFrame(7, SVC, 'Echo'));
  await waitFor(() => raw.frames.length === 4);
  assert.equal(raw.frames.map((f) => [f.streamId, f.type, f.status]), [
    [2, FrameType.Response, StatusCode.InvalidArgument],
    [3, FrameType.Response, StatusCode.InvalidArgument],
    [5, FrameType.Response, StatusCode.Unimplemented],
    [7, FrameType.Response, StatusCode.OK],
  ]);
  assert.match(raw.frames[0]!.message, /stream id 2 must be odd/);
  assert.match(raw.frames[1]!.message, /cannot decode ttrpc\.Request/);
  assert.match(raw.frames[2]!.message, /streaming calls are not supported/);
  raw.socket.destroy();
});

for (const [name, bytes, pattern] of [
  ['a length over 4 MiB', header(MAX_DATA_LENGTH + 1, 1, FrameType.Request), /frame length 4194305 exceeds the maximum 4194304/],
  ['an unknown frame type', header(0, 1, 7), /frame type 7 is unknown/],
  ['a response frame from a client', encodeFrame({ streamId: 1, type: FrameType.Response }), /client sent a response frame/],
  ['a frame cut short by the end of the stream', Buffer.concat([header(20, 1, FrameType.Request), Buffer.from('abc')]), /ended inside a frame \(3 of 20 data bytes\)/],
] as const) {
  test(`${name} closes the connection with a clear error; others are unaffected`, async () => {
    const bystander = await TtrpcClient.connect(path);
    const held = call(bystander, 'Hold', 'bystander');
    await waitFor(() => release.length === 1);
    errors.length = 0;
    const raw = await rawConnection();
    raw.socket.write(requestFrame(1, SVC, 'Echo'));
    await waitFor(() => raw.frames.length === 1);
    raw.socket.end(bytes);
    await raw.closed;
    assert.equal(raw.frames.map((f) => f.status), [StatusCode.OK]);
    await waitFor(() => errors.length === 1);
    assert.instance(errors[0], TtrpcError);
    assert.is((errors[0] as TtrpcError).code, 'TTRPC_PROTOCOL');
    assert.match(errors[0]!.message, pattern);
    release.splice(0).forEach((r) => r());
    assert.is((await held).toString(), 'bystander');
    bystander.close();
  });
}

test('random and mutated bytes on 60 connections: the server only ever reports protocol errors and keeps serving', async () => {
  const random = prng(0x5e_47_e5);
  const int = (n: number): number => Math.floor(random() * n);
  const valid = [requestFrame(1, SVC, 'Echo'), requestFrame(3, SVC, 'Nope'), requestFrame(5, 'x', 'y')];
  errors.length = 0;
  for (let i = 0; i < 60; i++) {
    const raw = await rawConnection();
    const parts = Array.from({ length: 1 + int(4) }, () => {
      const frame = Buffer.from(valid[int(valid.length)]!);
      if (random() < 0.3) return Buffer.from(Array.from({ length: int(40) }, () => int(256)));
      for (let e = int(3); e > 0; e--) frame[int(frame.length)] = int(256);
      return random() < 0.2 ? frame.subarray(0, int(frame.length)) : frame;
    });
    raw.socket.end(Buffer.concat(parts));
    await raw.closed;
  }
  for (const err of errors) {
    assert.ok(err instanceof TtrpcError && err.code === 'TTRPC_PROTOCOL', `unexpected ${String(err)}`);
  }
  assert.ok(errors.length > 10, `only ${errors.length} of 60 inputs were malformed`);
  const client = await TtrpcClient.connect(path);
  assert.is((await call(client, 'Echo', 'alive')).toString(), 'alive');
  client.close();
});

test('a client closes its connection on a server that breaks the protocol, failing its calls with why', async () => {
  const { createServer } = await import('node:net');
  const evilPath = join(dir.path, 'evil.sock');
  const evil = createServer((socket) => socket.on('data', () => socket.write(header(0, 1, FrameType.Request))));
  await new Promise<void>((resolve) => evil.listen(evilPath, resolve));
  const client = await TtrpcClient.connect(evilPath);
  const err = await rejection(client.call(SVC, 'Echo', Buffer.alloc(0)));
  assert.is((err as TtrpcError).code, 'TTRPC_CLOSED');
  assert.match(err.message, /server sent a request frame/);
  assert.ok(client.closed);
  await new Promise((resolve) => evil.close(resolve));
});

test('addresses: unix:// URLs, plain paths and abstract names; anything else and missing sockets fail clearly', async () => {
  assert.is(unixSocketPath('unix:///run/containerd/s/abc'), '/run/containerd/s/abc');
  assert.is(unixSocketPath('/run/containerd/containerd.sock.ttrpc'), '/run/containerd/containerd.sock.ttrpc');
  assert.is(unixSocketPath('unix://@/containerd-shim/x.sock'), '\0/containerd-shim/x.sock');
  assert.throws(() => unixSocketPath('tcp://127.0.0.1:1'), (err: TtrpcError) => err.code === 'TTRPC_INVALID_ARGUMENT');
  const err = await rejection(TtrpcClient.connect(join(dir.path, 'none.sock')));
  assert.is((err as TtrpcError).code, 'TTRPC_CONNECT_FAILED');
  assert.match(err.message, /none\.sock: .*ENOENT/);
});

test('listen replaces a stale socket file but not a live server\'s socket', async () => {
  const other = new TtrpcServer();
  const err = await rejection(other.listen(path));
  assert.is((err as TtrpcError).code, 'TTRPC_ADDRESS_IN_USE');
  assert.match(err.message, /already listens on .*shim\.sock/);
  const client = await TtrpcClient.connect(path);
  assert.is((await call(client, 'Echo', 'still mine')).toString(), 'still mine');
  client.close();
  // A socket file left by a server killed while listening.
  const stalePath = join(dir.path, 'stale.sock');
  const { spawnSync } = await import('node:child_process');
  const script = `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => process.kill(process.pid, 'SIGKILL'))`;
  assert.is(spawnSync(process.execPath, ['-e', script]).signal, 'SIGKILL');
  assert.ok(statSync(stalePath).isSocket());
  await other.listen(stalePath);
  const stale = await TtrpcClient.connect(stalePath);
  await rejection(stale.call(SVC, 'Echo', Buffer.alloc(0))); // served (Unimplemented): it listens now
  stale.close();
  await other.close();
});

function header(length: number, streamId: number, type: number): Buffer {
  const b = Buffer.alloc(HEADER_LENGTH);
  b.writeUInt32BE(length, 0);
  b.writeUInt32BE(streamId, 4);
  b.writeUInt8(type, 8);
  return b;
}

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test.run();
