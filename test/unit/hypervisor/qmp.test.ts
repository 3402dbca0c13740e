// The QMP client against a scripted QMP peer on a Unix socket (a unit test of the client).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server, type Socket } from 'node:net';
import { QmpClient } from '../../../src/hypervisor/qemu/qmp.js';
import { tempDir } from '../../helpers/tmp.js';

function qmpServer(path: string, reply: (cmd: { execute: string; id?: number }, socket: Socket) => void): Promise<Server> {
  const server = createServer((socket) => {
    socket.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const cmd = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (cmd.execute === 'qmp_capabilities') socket.write(`{"return": {}, "id": ${cmd.id}}\r\n`);
        else reply(cmd, socket);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

test('negotiates capabilities, skips events, returns results by id', async () => {
  const tmp = tempDir();
  const server = await qmpServer(`${tmp.path}/q.sock`, (cmd, socket) => {
    socket.write('{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n');
    socket.write(`{"return": {"status": "running", "running": true}, "id": ${cmd.id}}\r\n`);
  });
  try {
    const qmp = await QmpClient.connect(`${tmp.path}/q.sock`);
    assert.equal(await qmp.execute('query-status'), { status: 'running', running: true });
    qmp.close();
  } finally {
    server.close();
    tmp.remove();
  }
});

test('a QMP error names the command, class and description', async () => {
  const tmp = tempDir();
  const server = await qmpServer(`${tmp.path}/q.sock`, (cmd, socket) => {
    socket.write(`{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}, "id": ${cmd.id}}\r\n`);
  });
  try {
    const qmp = await QmpClient.connect(`${tmp.path}/q.sock`);
    try {
      await qmp.execute('nope');
      assert.unreachable('error was not reported');
    } catch (err) {
      assert.match((err as Error).message, 'QMP nope: CommandNotFound: The command nope has not been found');
    }
    qmp.close();
  } finally {
    server.close();
    tmp.remove();
  }
});

test('a peer that closes mid-command rejects instead of hanging', async () => {
  const tmp = tempDir();
  const server = await qmpServer(`${tmp.path}/q.sock`, (_cmd, socket) => socket.destroy());
  try {
    const qmp = await QmpClient.connect(`${tmp.path}/q.sock`);
    await qmp.execute('quit').then(() => assert.unreachable('resolved'), (err: Error) => assert.match(err.message, /closed/));
  } finally {
    server.close();
    tmp.remove();
  }
});

test('no greeting within the timeout is an error, and a missing socket too', async () => {
  const tmp = tempDir();
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(`${tmp.path}/s.sock`, resolve));
  try {
    await QmpClient.connect(`${tmp.path}/s.sock`, 100).then(() => assert.unreachable('connected'), (err: Error) => assert.match(err.message, /no QMP greeting within 100 ms/));
    await QmpClient.connect(`${tmp.path}/missing.sock`, 100).then(() => assert.unreachable('connected'), (err: Error) => assert.match(err.message, /ENOENT/));
  } finally {
    silent.close();
    tmp.remove();
  }
});

test.run();
