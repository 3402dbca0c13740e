// The host codec against docs/agent-protocol.md: round trips, every malformed case, chunking.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentError } from '../../../src/agent/errors.js';
import {
  encodeExit,
  encodeFrame,
  encodeRequest,
  encodeResponse,
  encodeStdinAck,
  FrameType,
  HEADER_SIZE,
  MAX_FRAME_LENGTH,
  MAX_PAYLOAD_SIZE,
  type Frame,
} from '../../../src/agent/protocol.js';
import { FrameDecoder } from '../../../src/agent/decoder.js';

/** Runs fn, expects an AgentError with code AGENT_PROTOCOL whose message matches `pattern`. */
function expectProtocolError(fn: () => unknown, pattern: RegExp): AgentError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, AgentError);
    const e = err as AgentError;
    assert.is(e.code, 'AGENT_PROTOCOL');
    assert.match(e.message, pattern);
    return e;
  }
  assert.unreachable(`expected AGENT_PROTOCOL matching ${pattern}`);
  throw new Error('unreachable');
}

function header(length: number, type: number, flags = 0, reserved = 0, id = 1): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32BE(length, 0);
  b.writeUInt8(type, 4);
  b.writeUInt8(flags, 5);
  b.writeUInt16BE(reserved, 6);
  b.writeUInt32BE(id, 8);
  return b;
}

function rawFrame(type: number, id: number, payload: Buffer | string): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  return Buffer.concat([header(8 + p.length, type, 0, 0, id), p]);
}

function decodeOne(bytes: Buffer): Frame {
  const frames = new FrameDecoder().push(bytes);
  assert.is(frames.length, 1);
  return frames[0]!;
}

test('encodeFrame lays out the header big-endian', () => {
  const f = encodeFrame(FrameType.STDOUT, 0x01020304, Buffer.from('hi'));
  assert.equal([...f], [0, 0, 0, 10, 4, 0, 0, 0, 1, 2, 3, 4, 0x68, 0x69]);
});

test('round trip: REQUEST keeps op and arguments', () => {
  const frame = decodeOne(encodeRequest(7, 'exec', { argv: ['sh', '-c', 'true'], tty: false }));
  assert.equal(frame, { type: FrameType.REQUEST, id: 7, op: 'exec', args: { argv: ['sh', '-c', 'true'], tty: false } });
});

test('encodeRequest leaves out undefined arguments and refuses an "op" argument', () => {
  const frame = decodeOne(encodeRequest(1, 'exec', { argv: ['x'], cwd: undefined }));
  assert.equal((frame as { args: object }).args, { argv: ['x'] });
  assert.throws(() => encodeRequest(1, 'exec', { op: 'other' }), (e: AgentError) => e.code === 'AGENT_INVALID_ARGUMENT');
});

test('round trip: RESPONSE ok and error', () => {
  assert.equal(decodeOne(encodeResponse(3, { ok: true, result: { version: 1, agent: 'x' } })), {
    type: FrameType.RESPONSE,
    id: 3,
    response: { ok: true, result: { version: 1, agent: 'x' } },
  });
  assert.equal(decodeOne(encodeResponse(4, { ok: false, error: { code: 'EXEC_FAILED', message: 'nope: ENOENT' } })), {
    type: FrameType.RESPONSE,
    id: 4,
    response: { ok: false, error: { code: 'EXEC_FAILED', message: 'nope: ENOENT' } },
  });
});

test('round trip: stream frames, including the empty end-of-stream frame', () => {
  for (const type of [FrameType.STDIN, FrameType.STDOUT, FrameType.STDERR]) {
    const data = Buffer.from([0, 255, 10, 13, 0xc3]);
    const frame = decodeOne(encodeFrame(type, 9, data)) as { type: number; id: number; data: Buffer };
    assert.is(frame.type, type);
    assert.is(frame.id, 9);
    assert.equal([...frame.data], [...data]);
    const end = decodeOne(encodeFrame(type, 9)) as { data: Buffer };
    assert.is(end.data.length, 0);
  }
});

test('round trip: EXIT with a code and with a signal', () => {
  assert.equal(decodeOne(encodeExit(5, { exitCode: 3, signal: null })), { type: FrameType.EXIT, id: 5, status: { exitCode: 3, signal: null } });
  assert.equal(decodeOne(encodeExit(5, { exitCode: null, signal: 'SIGKILL' })), {
    type: FrameType.EXIT,
    id: 5,
    status: { exitCode: null, signal: 'SIGKILL' },
  });
});

test('round trip: STDIN_ACK count', () => {
  assert.equal(decodeOne(encodeStdinAck(2, 0xfffffffe)), { type: FrameType.STDIN_ACK, id: 2, count: 0xfffffffe });
});

test('the largest payload (1 MiB) round trips; one byte more is refused by the encoder', () => {
  const payload = Buffer.alloc(MAX_PAYLOAD_SIZE, 0xab);
  const frame = decodeOne(encodeFrame(FrameType.STDOUT, 1, payload)) as { data: Buffer };
  assert.is(frame.data.length, MAX_PAYLOAD_SIZE);
  assert.ok(frame.data.equals(payload));
  assert.throws(() => encodeFrame(FrameType.STDOUT, 1, Buffer.alloc(MAX_PAYLOAD_SIZE + 1)), (e: AgentError) => e.code === 'AGENT_INVALID_ARGUMENT');
});

test('encoder refuses ids and types that do not fit', () => {
  assert.throws(() => encodeFrame(FrameType.STDOUT, -1), (e: AgentError) => e.code === 'AGENT_INVALID_ARGUMENT');
  assert.throws(() => encodeFrame(FrameType.STDOUT, 2 ** 32), (e: AgentError) => e.code === 'AGENT_INVALID_ARGUMENT');
  assert.throws(() => encodeFrame(9 as FrameType, 1), (e: AgentError) => e.code === 'AGENT_INVALID_ARGUMENT');
});

// --- malformed input ------------------------------------------------------------------------------

test('length below 8 is refused as soon as the 4 length bytes arrive', () => {
  for (const length of [0, 1, 7]) {
    expectProtocolError(() => new FrameDecoder().push(Buffer.from([0, 0, 0, length])), new RegExp(`length ${length} is below the minimum 8`));
  }
});

test('length above 8 + 1 MiB is refused without waiting for the payload', () => {
  const d = new FrameDecoder();
  const b = Buffer.alloc(4);
  b.writeUInt32BE(MAX_FRAME_LENGTH + 1);
  expectProtocolError(() => d.push(b), /length 1048585 exceeds the maximum 1048584/);
  b.writeUInt32BE(0xffffffff);
  expectProtocolError(() => new FrameDecoder().push(b), /length 4294967295 exceeds/);
});

test('unknown type is refused (0, 8, 255), naming the value', () => {
  for (const type of [0, 8, 255]) {
    expectProtocolError(() => new FrameDecoder().push(header(8, type).subarray(0, 5)), new RegExp(`frame type ${type} is unknown`));
  }
});

test('non-zero flags are refused, naming the value', () => {
  expectProtocolError(() => new FrameDecoder().push(header(8, FrameType.STDOUT, 0x80).subarray(0, 6)), /STDOUT frame flags are 0x80, must be 0/);
});

test('non-zero reserved bytes are refused, naming the value', () => {
  expectProtocolError(() => new FrameDecoder().push(header(8, FrameType.EXIT, 0, 0x0100)), /EXIT frame reserved field is 0x0100/);
  expectProtocolError(() => new FrameDecoder().push(header(8, FrameType.EXIT, 0, 0x0001)), /reserved field is 0x0001/);
});

test('JSON frame payloads must be UTF-8 JSON objects', () => {
  for (const type of [FrameType.REQUEST, FrameType.RESPONSE, FrameType.EXIT]) {
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, '[1,2]')), /payload must be a JSON object, got \[1,2\]/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, 'null')), /must be a JSON object, got null/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, '"str"')), /must be a JSON object/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, '42')), /must be a JSON object/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, '')), /not valid JSON/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, '{"a":')), /not valid JSON/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, Buffer.from([0x7b, 0xff, 0x7d]))), /not valid UTF-8/);
    // An overlong encoding of '"' and a lone surrogate are invalid UTF-8 too.
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, Buffer.from([0x7b, 0xc0, 0xa2, 0x7d]))), /not valid UTF-8/);
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]))), /not valid UTF-8/);
    // A byte-order mark is not JSON whitespace.
    expectProtocolError(() => new FrameDecoder().push(rawFrame(type, 1, Buffer.from('\ufeff{}', 'utf8'))), /not valid JSON/);
  }
});

test('deeply nested JSON is decoded or refused, never a crash', () => {
  const depth = 200_000;
  const text = `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`.slice(0, MAX_PAYLOAD_SIZE);
  try {
    new FrameDecoder().push(rawFrame(FrameType.REQUEST, 1, text));
  } catch (err) {
    assert.instance(err, AgentError);
    assert.is((err as AgentError).code, 'AGENT_PROTOCOL');
  }
});

test('RESPONSE must have ok, and result / error of the documented shape', () => {
  const bad: Array<[string, RegExp]> = [
    ['{}', /"ok" must be true or false, got undefined/],
    ['{"ok":1,"result":{}}', /"ok" must be true or false, got 1/],
    ['{"ok":true}', /"result" must be a JSON object, got undefined/],
    ['{"ok":true,"result":[]}', /"result" must be a JSON object, got \[\]/],
    ['{"ok":false}', /"error" must be a JSON object/],
    ['{"ok":false,"error":{"message":"m"}}', /"error.code" must be a non-empty string, got undefined/],
    ['{"ok":false,"error":{"code":"X","message":5}}', /"error.message" must be a string, got 5/],
  ];
  for (const [json, pattern] of bad) expectProtocolError(() => new FrameDecoder().push(rawFrame(FrameType.RESPONSE, 9, json)), pattern);
  expectProtocolError(() => new FrameDecoder().push(rawFrame(FrameType.RESPONSE, 9, '{}')), /RESPONSE frame \(id 9\)/);
});

test('EXIT must carry exitCode (null or 0..255) and signal (null or string)', () => {
  const bad: Array<[string, RegExp]> = [
    ['{}', /"exitCode" must be null or an integer 0..255, got undefined/],
    ['{"exitCode":1.5,"signal":null}', /"exitCode" .* got 1.5/],
    ['{"exitCode":-1,"signal":null}', /got -1/],
    ['{"exitCode":256,"signal":null}', /got 256/],
    ['{"exitCode":"0","signal":null}', /got "0"/],
    ['{"exitCode":0}', /"signal" must be null or a string, got undefined/],
    ['{"exitCode":null,"signal":9}', /"signal" must be null or a string, got 9/],
  ];
  for (const [json, pattern] of bad) expectProtocolError(() => new FrameDecoder().push(rawFrame(FrameType.EXIT, 1, json)), pattern);
});

test('REQUEST must have a string op', () => {
  expectProtocolError(() => new FrameDecoder().push(rawFrame(FrameType.REQUEST, 1, '{"op":1}')), /"op" must be a string, got 1/);
});

test('STDIN_ACK payload must be exactly 4 bytes', () => {
  for (const size of [0, 3, 5, 8]) {
    expectProtocolError(() => new FrameDecoder().push(rawFrame(FrameType.STDIN_ACK, 1, Buffer.alloc(size))), new RegExp(`payload is ${size} bytes, must be exactly 4`));
  }
});

test('after a malformed frame every later push throws, even valid input', () => {
  const d = new FrameDecoder();
  expectProtocolError(() => d.push(Buffer.from([0, 0, 0, 1])), /below the minimum/);
  assert.ok(d.failed);
  const e = expectProtocolError(() => d.push(encodeFrame(FrameType.STDOUT, 1, Buffer.from('x'))), /decoder stopped after an earlier error: frame length 1/);
  assert.instance(e.cause, AgentError);
  assert.is(d.bufferedBytes, 0);
});

test('feed() hands over the frames before a malformed one in the same chunk', () => {
  const good = encodeExit(4, { exitCode: 0, signal: null });
  const seen: Frame[] = [];
  expectProtocolError(() => new FrameDecoder().feed(Buffer.concat([good, header(8, 42)]), (f) => seen.push(f)), /type 42/);
  assert.equal(seen, [{ type: FrameType.EXIT, id: 4, status: { exitCode: 0, signal: null } }]);
});

// --- chunking -------------------------------------------------------------------------------------

const stream = Buffer.concat([
  encodeResponse(1, { ok: true, result: { version: 1, agent: 'vc-agent test' } }),
  encodeFrame(FrameType.STDOUT, 2, Buffer.from('hello\n')),
  encodeFrame(FrameType.STDOUT, 2),
  encodeFrame(FrameType.STDERR, 2, Buffer.from('oops')),
  encodeFrame(FrameType.STDERR, 2),
  encodeStdinAck(2, 4096),
  encodeExit(2, { exitCode: null, signal: 'SIGKILL' }),
]);
const expected = new FrameDecoder().push(stream);

function normalise(frames: Frame[]): unknown[] {
  return frames.map((f) => ('data' in f ? { ...f, data: [...f.data] } : f));
}

test('the multi-frame buffer decodes to 7 frames in one chunk', () => {
  assert.is(expected.length, 7);
  assert.equal(normalise(expected).map((f) => (f as Frame).type), [2, 4, 4, 5, 5, 7, 6]);
});

test('every single split point gives the same frames', () => {
  for (let i = 0; i <= stream.length; i++) {
    const d = new FrameDecoder();
    const frames = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i))];
    assert.equal(normalise(frames), normalise(expected), `split at ${i}`);
    assert.is(d.bufferedBytes, 0);
  }
});

test('every pair of split points gives the same frames', () => {
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i, j)), ...d.push(stream.subarray(j))];
      assert.equal(normalise(frames), normalise(expected), `split at ${i}, ${j}`);
    }
  }
});

test('one byte at a time gives the same frames, and buffers at most one frame', () => {
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  let most = 0;
  for (const byte of stream) {
    frames.push(...d.push(Buffer.from([byte])));
    most = Math.max(most, d.bufferedBytes);
  }
  assert.equal(normalise(frames), normalise(expected));
  assert.ok(most < 100, `held ${most} bytes`);
});

test('decoded data does not change when the caller reuses its chunk buffer after a split frame', () => {
  const frame = encodeFrame(FrameType.STDOUT, 1, Buffer.from('abcdef'));
  const d = new FrameDecoder();
  const scratch = Buffer.from(frame.subarray(0, 15));
  assert.equal(d.push(scratch), []);
  scratch.fill(0);
  const [out] = d.push(Buffer.from(frame.subarray(15))) as unknown as [{ data: Buffer }];
  assert.is(out.data.toString(), 'abcdef');
});

test.run();
