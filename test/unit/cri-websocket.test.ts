// The tests' WebSocket client (test/helpers/cri/websocket.ts) and the streaming Status parser
// against a small server written here from RFC 6455: the handshake's accept check, masked client
// frames, fragmented and large server messages, ping/pong, the close handshake. The integration
// tests cover containerd's streaming server itself; this covers what it may not exercise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { acceptFor, Opcode, WebSocketClient, type WebSocketMessage } from '../helpers/cri/websocket.js';
import { exitCodeOf } from '../helpers/cri/stream.js';

/** A server frame (never masked). */
function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, n])
    : n < 65536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  return Buffer.concat([head, payload]);
}

/** Client frames read off `sock`, unmasked; fails the test on an unmasked one. */
function readClientFrames(sock: Socket, onFrame: (opcode: number, payload: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      assert.ok(buf[1]! & 0x80, 'client frames are masked');
      let len = buf[1]! & 0x7f, at = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
      if (buf.length < at + 4 + len) return;
      const mask = buf.subarray(at, at + 4);
      const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len).map((b, i) => b ^ mask[i & 3]!));
      onFrame(buf[0]! & 0x0f, payload);
      buf = buf.subarray(at + 4 + len);
    }
  });
}

/** A server on 127.0.0.1 that runs `script` on each upgraded socket; `accept` overrides the answer. */
async function serve(script: (sock: Socket) => void, accept?: string): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => { res.writeHead(400).end('not a websocket request'); });
  server.on('upgrade', (req, sock: Socket) => {
    const key = req.headers['sec-websocket-key'] as string;
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    sock.write(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept ?? acceptFor(key)}`, `Sec-WebSocket-Protocol: ${offered[0]}`, '', ''].join('\r\n'));
    script(sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/exec/tok?x=1` };
}

test('fragments reassembled, a 70 KB message, ping answered, masked echo, close handshake', async () => {
  const big = Buffer.alloc(70_000, 7);
  const seen: string[] = [];
  const { server, url } = await serve((sock) => {
    sock.write(Buffer.concat([frame(Opcode.binary, Buffer.from('hel'), false), frame(Opcode.ping, Buffer.from('p1')),
      frame(Opcode.continuation, Buffer.from('lo'), false), frame(Opcode.continuation, Buffer.from('!'))]));
    sock.write(frame(Opcode.binary, big));
    readClientFrames(sock, (op, payload) => {
      seen.push(`${op}:${payload.length > 20 ? payload.length : payload.toString('hex')}`);
      if (op === Opcode.binary) sock.write(frame(Opcode.text, payload));
      if (op === Opcode.binary && payload.toString() === 'bye') sock.write(frame(Opcode.close, Buffer.from([0x03, 0xe8, 0x6f, 0x6b])));
      if (op === Opcode.close) sock.end();
    });
  });
  try {
    const ws = await WebSocketClient.connect(url.replace('ws:', 'http:'), { protocols: ['v4.channel.k8s.io', 'channel.k8s.io'] });
    assert.equal(ws.protocol, 'v4.channel.k8s.io');
    const got: WebSocketMessage[] = [];
    ws.on('message', (m: WebSocketMessage) => {
      got.push(m);
      if (got.length === 2) { ws.send(Buffer.alloc(300, 1)); ws.send('bye'); }
    });
    const [code, reason] = await new Promise<[number, string]>((r) => ws.on('close', (c: number, why: string) => r([c, why])));
    assert.equal([code, reason], [1000, 'ok']);
    assert.equal(got.map((m) => [m.binary, m.data.length]), [[true, 6], [true, 70_000], [false, 300], [false, 3]]);
    assert.equal(got[0]!.data.toString(), 'hello!');
    assert.ok(got[1]!.data.equals(big));
    assert.equal(seen, [`${Opcode.pong}:${Buffer.from('p1').toString('hex')}`, `${Opcode.binary}:300`, `${Opcode.binary}:${Buffer.from('bye').toString('hex')}`, `${Opcode.close}:03e8`]);
  } finally { server.close(); }
});

test('a wrong Sec-WebSocket-Accept, a non-101 answer, a masked server frame: clear errors', async () => {
  const bad = await serve(() => {}, 'AAAA');
  try {
    const err = await WebSocketClient.connect(bad.url).then(() => null, (e: Error) => e.message);
    assert.match(err ?? 'connected', /Sec-WebSocket-Accept AAAA is not/);
  } finally { bad.server.close(); }
  // containerd's answer to an unknown token: a plain HTTP error, not an upgrade.
  const refusing = createServer();
  refusing.on('upgrade', (_req, sock: Socket) => sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nno such token'));
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  try {
    const err = await WebSocketClient.connect(`http://127.0.0.1:${(refusing.address() as { port: number }).port}/exec/x`).then(() => null, (e: Error) => e.message);
    assert.match(err ?? 'connected', /answered "HTTP\/1\.1 404 Not Found", not 101.*no such token/);
  } finally { refusing.close(); }
  const masked = await serve((sock) => sock.write(Buffer.from([0x82, 0x81, 1, 2, 3, 4, 5])));
  try {
    const ws = await WebSocketClient.connect(masked.url);
    const err = await new Promise<string>((r) => ws.on('error', (e: Error) => r(e.message)));
    assert.match(err, /masked frame/);
  } finally { masked.server.close(); }
});

test('channel 3: Success is 0, NonZeroExitCode carries the code, other failures throw', () => {
  const v4 = 'v4.channel.k8s.io';
  assert.equal(exitCodeOf('{"metadata":{},"status":"Success"}', v4), 0);
  assert.equal(exitCodeOf(JSON.stringify({ status: 'Failure', reason: 'NonZeroExitCode', message: 'command terminated with non-zero exit code', details: { causes: [{ reason: 'ExitCode', message: '4' }] } }), v4), 4);
  assert.throws(() => exitCodeOf(JSON.stringify({ status: 'Failure', reason: 'InternalError', message: 'boom' }), v4), /InternalError: boom/);
  assert.throws(() => exitCodeOf('', v4), /no Status/);
  assert.equal(exitCodeOf('', 'channel.k8s.io'), 0);
  assert.throws(() => exitCodeOf('exec failed', 'channel.k8s.io'), /exec failed/);
});

test.run();
