// dialUnix and the hybrid vsock handshake against small scripted Unix-socket servers.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient } from '../../../src/agent/client.js';
import { dialHybridVsock, dialUnix } from '../../../src/agent/dial.js';
import { encodeResponse, FrameType } from '../../../src/agent/protocol.js';
import { FrameDecoder } from '../../../src/agent/decoder.js';
import { rejection, within } from './fake-agent.js';

const servers = new Set<{ server: Server; dir: string; sockets: Set<Socket> }>();

/** A Unix-socket server whose connections are handed to `onConnection`. */
async function serve(onConnection: (socket: Socket) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vc-dial-'));
  const path = join(dir, 'vsock.sock');
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.add({ server, dir, sockets });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

test.after.each(async () => {
  for (const entry of servers) {
    for (const s of entry.sockets) s.destroy();
    await new Promise((r) => entry.server.close(r));
    rmSync(entry.dir, { recursive: true, force: true });
  }
  servers.clear();
});

/** Reads one line from the socket (the CONNECT request). */
function readLine(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        socket.off('data', onData);
        resolve(text.slice(0, nl + 1));
      }
    };
    socket.on('data', onData);
  });
}

function firstData(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => socket.once('data', resolve));
}

test('dialUnix connects to a listening socket', async () => {
  const path = await serve(() => {});
  const socket = await within(dialUnix(path));
  assert.ok(!socket.destroyed);
  socket.destroy();
});

test('dialUnix to a missing socket rejects AGENT_CONNECT_FAILED naming the path', async () => {
  const err = await rejection(dialUnix('/nonexistent/dir/agent.sock'));
  assert.is(err.code, 'AGENT_CONNECT_FAILED');
  assert.match(err.message, /\/nonexistent\/dir\/agent\.sock.*ENOENT/);
});

test('dialUnix honours an already aborted signal', async () => {
  const path = await serve(() => {});
  const err = await rejection(dialUnix(path, { signal: AbortSignal.abort() }));
  assert.is(err.code, 'AGENT_ABORTED');
});

test('hybrid vsock: writes "CONNECT <port>\\n" and resolves on "OK <n>\\n"', async () => {
  let request = '';
  const path = await serve(async (socket) => {
    request = await readLine(socket);
    socket.write('OK 1073741824\n');
    socket.on('data', (d) => socket.write(d)); // echo afterwards
  });
  const socket = await within(dialHybridVsock(path, 1024));
  assert.is(request, 'CONNECT 1024\n');
  socket.write('ping');
  assert.is((await within(firstData(socket))).toString(), 'ping');
  socket.destroy();
});

test('hybrid vsock: bytes sent together with the OK line are not lost', async () => {
  const path = await serve(async (socket) => {
    await readLine(socket);
    socket.write(Buffer.concat([Buffer.from('OK 52\n'), Buffer.from([0, 1, 2, 3, 0xff])]));
  });
  const socket = await within(dialHybridVsock(path, 1024));
  assert.equal([...(await within(firstData(socket)))], [0, 1, 2, 3, 0xff]);
  socket.destroy();
});

test('hybrid vsock: a reply split over several writes, followed by a frame, feeds an AgentClient', async () => {
  const path = await serve(async (socket) => {
    await readLine(socket);
    const decoder = new FrameDecoder();
    socket.write('O');
    await new Promise((r) => setTimeout(r, 10));
    socket.write('K 7');
    await new Promise((r) => setTimeout(r, 10));
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.type === FrameType.REQUEST && f.op === 'hello') socket.write(encodeResponse(f.id, { ok: true, result: { version: 1, agent: 'via-vsock' } }));
      }
    });
    socket.write('7\n');
  });
  const client = await within(AgentClient.connect(() => dialHybridVsock(path, 1024)));
  assert.is(client.agent, 'via-vsock');
  await client.close();
});

test('hybrid vsock: a reply other than OK rejects AGENT_CONNECT_FAILED quoting it', async () => {
  for (const reply of ['FAILURE\n', 'OK\n', 'OK abc\n', 'ok 5\n', 'OK 5 6\n']) {
    const path = await serve(async (socket) => {
      await readLine(socket);
      socket.write(reply);
    });
    const err = await rejection(dialHybridVsock(path, 1024));
    assert.is(err.code, 'AGENT_CONNECT_FAILED', reply);
    assert.match(err.message, /CONNECT 1024 via .* refused: reply "/);
    assert.ok(err.message.includes(JSON.stringify(reply.slice(0, -1))), err.message);
  }
});

test('hybrid vsock: the peer closing without a reply rejects AGENT_CONNECT_FAILED', async () => {
  const path = await serve(async (socket) => {
    await readLine(socket);
    socket.end();
  });
  const err = await rejection(dialHybridVsock(path, 1024));
  assert.is(err.code, 'AGENT_CONNECT_FAILED');
  assert.match(err.message, /closed before replying/);
});

test('hybrid vsock: a reply without a newline within 128 bytes is AGENT_PROTOCOL', async () => {
  const path = await serve(async (socket) => {
    await readLine(socket);
    socket.write('x'.repeat(200));
  });
  const err = await rejection(dialHybridVsock(path, 1024));
  assert.is(err.code, 'AGENT_PROTOCOL');
  assert.match(err.message, /no newline in the first 200 bytes/);
});

test('hybrid vsock: no reply rejects AGENT_TIMEOUT and closes the socket', async () => {
  let serverSide: Socket | undefined;
  const path = await serve((socket) => {
    serverSide = socket;
    socket.resume(); // read, so the client's close is noticed
  });
  const err = await rejection(dialHybridVsock(path, 1024, { timeoutMs: 60 }));
  assert.is(err.code, 'AGENT_TIMEOUT');
  await within(new Promise((r) => (serverSide!.destroyed ? r(null) : serverSide!.once('close', r))), 2000, 'server side close');
});

test('hybrid vsock: abort while waiting for the reply rejects AGENT_ABORTED', async () => {
  const path = await serve(() => {});
  const controller = new AbortController();
  const pending = dialHybridVsock(path, 1024, { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  const err = await rejection(pending);
  assert.is(err.code, 'AGENT_ABORTED');
});

test('hybrid vsock: an invalid port is refused before connecting', async () => {
  const err = await rejection(dialHybridVsock('/nonexistent', -1));
  assert.is(err.code, 'AGENT_INVALID_ARGUMENT');
});

test.run();
