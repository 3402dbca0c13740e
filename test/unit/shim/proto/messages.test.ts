// The typed codecs of src/shim/proto: encodings checked against bytes worked out by hand from the
// protobuf wire format (so a schema error shows here even without containerd's files), decoding
// fills every field, garbage is a ProtoDecodeError, and events are packed as containerd packs them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { forwardRequest, eventMessages, taskEvents } from '../../../../src/shim/proto/events.js';
import { common, dateFromTimestamp, ProtoDecodeError, protoRoot, timestampFromDate } from '../../../../src/shim/proto/messages.js';
import { TASK_SERVICE, taskMessages, TaskStatus, type TaskMethods } from '../../../../src/shim/proto/task.js';

const hex = (b: Buffer): string => b.toString('hex');

test('DeleteResponse (what `<shim> delete` prints): pid 1, exit status 137, exited at 1.5 s', () => {
  // field 1 varint 1; field 2 varint 137 (0x89 0x01); field 3 length 8: {seconds 1, nanos 500000000 (varint 80 ca b5 ee 01)}
  const bytes = taskMessages.DeleteResponse.encode({ pid: 1, exitStatus: 137, exitedAt: { seconds: 1, nanos: 500_000_000 } });
  assert.is(hex(bytes), '0801' + '108901' + '1a08' + '0801' + '1080cab5ee01');
  assert.equal(taskMessages.DeleteResponse.decode(bytes), { pid: 1, exitStatus: 137, exitedAt: { seconds: 1, nanos: 500_000_000 } });
});

test('ttrpc Request and Response: field numbers and types as the wire shows them', () => {
  const request = common.Request.encode({
    service: 's', method: 'm', payload: Buffer.from([0xff]), timeoutNano: 1, metadata: [{ key: 'k', value: 'v' }],
  });
  // 1:"s" 2:"m" 3:bytes ff 4:varint 1 5:{1:"k" 2:"v"}
  assert.is(hex(request), '0a0173' + '12016d' + '1a01ff' + '2001' + '2a06' + '0a016b' + '120176');
  const response = common.Response.encode({ status: { code: 5, message: 'no' }, payload: Buffer.from('ok') });
  // 1:{1:varint 5, 2:"no"} 2:"ok"
  assert.is(hex(response), '0a06' + '0805' + '12026e6f' + '12026f6b');
  assert.equal(common.Response.decode(response), { status: { code: 5, message: 'no', details: [] }, payload: Buffer.from('ok') });
});

test('CreateTaskRequest: repeated Mounts, an Any and every default filled in on decode', () => {
  const bytes = taskMessages.CreateTaskRequest.encode({
    id: 'c1',
    rootfs: [{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a:/b', 'upperdir=/u', 'workdir=/w'] }],
    stdout: '/run/containerd/fifo/1',
    options: { typeUrl: 'containerd.runc.v1.Options', value: Buffer.from([8, 1]) },
  });
  assert.equal(taskMessages.CreateTaskRequest.decode(bytes), {
    id: 'c1', bundle: '',
    rootfs: [{ type: 'overlay', source: 'overlay', target: '', options: ['lowerdir=/a:/b', 'upperdir=/u', 'workdir=/w'] }],
    terminal: false, stdin: '', stdout: '/run/containerd/fifo/1', stderr: '', checkpoint: '', parentCheckpoint: '',
    options: { typeUrl: 'containerd.runc.v1.Options', value: Buffer.from([8, 1]) },
  });
});

test('StateResponse status, UpdateTaskRequest annotations (a map) and a 64-bit timeout come back as given', () => {
  const state = taskMessages.StateResponse.decode(taskMessages.StateResponse.encode({ id: 'c1', status: TaskStatus.Paused, pid: 4_000_000_000 }));
  assert.is(state.status, TaskStatus.Paused);
  assert.is(state.pid, 4_000_000_000);
  assert.is(state.exitedAt, null);
  const update = taskMessages.UpdateTaskRequest.decode(taskMessages.UpdateTaskRequest.encode({ id: 'c1', annotations: { a: '1', 'b.c/d': '2' } }));
  assert.equal(update.annotations, { a: '1', 'b.c/d': '2' });
  const ten_days = 10 * 24 * 3600 * 1e9;
  assert.is(common.Request.decode(common.Request.encode({ timeoutNano: ten_days })).timeoutNano, ten_days);
});

test('garbage and truncated messages are ProtoDecodeError naming the message', () => {
  const good = taskMessages.CreateTaskRequest.encode({ id: 'c1', bundle: '/run/b' });
  for (const bad of [good.subarray(0, good.length - 1), Buffer.from([0x0a, 0x7f]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0x0f])]) {
    assert.throws(() => taskMessages.CreateTaskRequest.decode(bad),
      (err: Error) => err instanceof ProtoDecodeError && /cannot decode containerd\.task\.v2\.CreateTaskRequest/.test(err.message), hex(bad));
  }
});

test('Timestamps from and to Dates', () => {
  const at = new Date('2026-12-06T13:45:01.234Z');
  assert.equal(timestampFromDate(at), { seconds: 1796564701, nanos: 234_000_000 });
  assert.is(dateFromTimestamp(timestampFromDate(at)).getTime(), at.getTime());
  assert.equal(timestampFromDate(new Date(-1)), { seconds: -1, nanos: 999_000_000 });
});

test('forwardRequest packs an event as containerd does: topic, namespace, time and the type name as type_url', () => {
  const at = new Date(1_700_000_000_500);
  const req = forwardRequest('k8s.io', 'TaskExit', { containerId: 'c1', id: 'c1', pid: 42, exitStatus: 7, exitedAt: timestampFromDate(at) }, at);
  const decoded = eventMessages.ForwardRequest.decode(eventMessages.ForwardRequest.encode(req));
  const envelope = decoded.envelope!;
  assert.equal(envelope.timestamp, { seconds: 1_700_000_000, nanos: 500_000_000 });
  assert.is(envelope.namespace, 'k8s.io');
  assert.is(envelope.topic, '/tasks/exit');
  assert.is(envelope.event!.typeUrl, 'containerd.events.TaskExit');
  assert.equal(taskEvents.TaskExit.codec.decode(envelope.event!.value), {
    containerId: 'c1', id: 'c1', pid: 42, exitStatus: 7, exitedAt: { seconds: 1_700_000_000, nanos: 500_000_000 },
  });
});

test('the Task service in proto/ has exactly the methods of TaskMethods, with their message types', () => {
  const service = protoRoot().lookupService(TASK_SERVICE);
  const methods: Record<keyof TaskMethods, [string, string]> = {
    State: ['StateRequest', 'StateResponse'], Create: ['CreateTaskRequest', 'CreateTaskResponse'],
    Start: ['StartRequest', 'StartResponse'], Delete: ['DeleteRequest', 'DeleteResponse'],
    Pids: ['PidsRequest', 'PidsResponse'], Pause: ['PauseRequest', 'Empty'], Resume: ['ResumeRequest', 'Empty'],
    Checkpoint: ['CheckpointTaskRequest', 'Empty'], Kill: ['KillRequest', 'Empty'], Exec: ['ExecProcessRequest', 'Empty'],
    ResizePty: ['ResizePtyRequest', 'Empty'], CloseIO: ['CloseIORequest', 'Empty'], Update: ['UpdateTaskRequest', 'Empty'],
    Wait: ['WaitRequest', 'WaitResponse'], Stats: ['StatsRequest', 'StatsResponse'], Connect: ['ConnectRequest', 'ConnectResponse'],
    Shutdown: ['ShutdownRequest', 'Empty'],
  };
  assert.equal(Object.fromEntries(service.methodsArray.map((m) => [m.name, [m.resolvedRequestType!.name, m.resolvedResponseType!.name]])), methods);
  // Every message named in TaskMethods has a typed codec.
  for (const [request, response] of Object.values(methods)) {
    assert.ok(request in taskMessages, request);
    assert.ok(response === 'Empty' || response in taskMessages, response);
  }
});

test.run();
