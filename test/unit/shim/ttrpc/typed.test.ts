// Typed services over real sockets: a Task service bound from handlers for some methods (the rest
// Unimplemented), called through a stub; a request that does not decode is InvalidArgument before
// the handler runs; and Events/Forward to a stand-in for containerd's TTRPC_ADDRESS server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { EVENTS_SERVICE, forwardRequest, taskEvents, type EventsMethods, type Envelope } from '../../../../src/shim/proto/events.js';
import { TASK_SERVICE, TaskStatus, type TaskMethods } from '../../../../src/shim/proto/task.js';
import { TtrpcClient } from '../../../../src/shim/ttrpc/client.js';
import { RpcError, StatusCode } from '../../../../src/shim/ttrpc/errors.js';
import { TtrpcServer } from '../../../../src/shim/ttrpc/server.js';
import { bindService, serviceStub } from '../../../../src/shim/ttrpc/typed.js';
import { tempDir } from '../../../helpers/tmp.js';

const dir = tempDir('vc-ttrpc-typed');
test.after(() => dir.remove());

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

test('a Task service: typed handlers, namespace metadata, statuses, and Unimplemented for the methods left out', async () => {
  const server = new TtrpcServer();
  const namespaces: string[] = [];
  server.register(TASK_SERVICE, bindService<TaskMethods>(TASK_SERVICE, {
    Create: (req, call) => {
      namespaces.push(...(call.metadata['containerd-namespace-ttrpc'] ?? []));
      if (req.id === 'dup') throw new RpcError(StatusCode.AlreadyExists, `task ${req.id} exists`);
      return { pid: req.rootfs.length * 100 + (req.terminal ? 1 : 0) };
    },
    State: (req) => ({ id: req.id, execId: req.execId, status: TaskStatus.Running, pid: 7 }),
    Kill: () => ({}),
    Wait: () => ({ exitStatus: 137, exitedAt: { seconds: 1_700_000_000, nanos: 1 } }),
  }));
  const path = join(dir.path, 'task.sock');
  await server.listen(path);
  const client = await TtrpcClient.connect(`unix://${path}`);
  const task = serviceStub<TaskMethods>(client, TASK_SERVICE);
  const ns = { metadata: { 'containerd-namespace-ttrpc': 'default' } };

  assert.equal(await task.Create({ id: 'c1', terminal: true, rootfs: [{ type: 'overlay' }, { type: 'bind' }] }, ns), { pid: 201 });
  assert.equal(namespaces, ['default']);
  const exists = await rejection(task.Create({ id: 'dup' }, ns));
  assert.is((exists as RpcError).status, StatusCode.AlreadyExists);
  assert.equal(await task.State({ id: 'c1', execId: 'e1' }), {
    id: 'c1', bundle: '', pid: 7, status: TaskStatus.Running, stdin: '', stdout: '', stderr: '', terminal: false, exitStatus: 0, exitedAt: null, execId: 'e1',
  });
  assert.equal(await task.Kill({ id: 'c1', signal: 9, all: true }), {});
  assert.equal(await task.Wait({ id: 'c1' }), { exitStatus: 137, exitedAt: { seconds: 1_700_000_000, nanos: 1 } });
  const checkpoint = await rejection(task.Checkpoint({ id: 'c1', path: '/x' }));
  assert.is((checkpoint as RpcError).status, StatusCode.Unimplemented);
  assert.is(checkpoint.message, `method ${TASK_SERVICE}/Checkpoint is not implemented`);

  // A payload that is not a CreateTaskRequest: answered before the handler sees it.
  const before = namespaces.length;
  const bad = await rejection(client.call(TASK_SERVICE, 'Create', Buffer.from([0x0a, 0x10, 0x41])));
  assert.is((bad as RpcError).status, StatusCode.InvalidArgument);
  assert.match(bad.message, /cannot decode containerd\.task\.v2\.CreateTaskRequest/);
  assert.is(namespaces.length, before);

  client.close();
  await server.close();
});

test('bindService refuses a method the service does not have', () => {
  assert.throws(() => bindService(TASK_SERVICE, { Frobnicate: () => ({}) } as never), /containerd\.task\.v2\.Task has no method Frobnicate/);
});

test('Events/Forward: the envelopes arrive at a TTRPC_ADDRESS-style server in order, decodable by topic', async () => {
  const received: Envelope[] = [];
  const containerd = new TtrpcServer();
  containerd.register(EVENTS_SERVICE, bindService<EventsMethods>(EVENTS_SERVICE, {
    Forward: (req) => {
      received.push(req.envelope!);
      return {};
    },
  }));
  const address = join(dir.path, 'containerd.sock.ttrpc');
  await containerd.listen(address);
  const client = await TtrpcClient.connect(address); // TTRPC_ADDRESS is a plain path
  const events = serviceStub<EventsMethods>(client, EVENTS_SERVICE);
  await events.Forward(forwardRequest('default', 'TaskCreate', { containerId: 'c1', bundle: '/b', pid: 10, io: { stdout: '/fifo' } }));
  await events.Forward(forwardRequest('default', 'TaskStart', { containerId: 'c1', pid: 10 }));
  await events.Forward(forwardRequest('default', 'TaskExit', { containerId: 'c1', id: 'c1', pid: 10, exitStatus: 7 }));
  await events.Forward(forwardRequest('default', 'TaskDelete', { containerId: 'c1', pid: 10, exitStatus: 7 }));
  assert.equal(received.map((e) => [e.namespace, e.topic, e.event!.typeUrl]), [
    ['default', '/tasks/create', 'containerd.events.TaskCreate'],
    ['default', '/tasks/start', 'containerd.events.TaskStart'],
    ['default', '/tasks/exit', 'containerd.events.TaskExit'],
    ['default', '/tasks/delete', 'containerd.events.TaskDelete'],
  ]);
  assert.is(taskEvents.TaskCreate.codec.decode(received[0]!.event!.value).io!.stdout, '/fifo');
  assert.is(taskEvents.TaskExit.codec.decode(received[2]!.event!.value).exitStatus, 7);
  client.close();
  await containerd.close();
});

test.run();
