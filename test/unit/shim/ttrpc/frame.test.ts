// The ttrpc frame codec against containerd/ttrpc's PROTOCOL.md: the header layout byte by byte,
// round trips in every chunking, and each malformed case reported as soon as its bytes arrive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TtrpcError } from '../../../../src/shim/ttrpc/errors.js';
import { encodeFrame, FrameDecoder, FrameType, HEADER_LENGTH, MAX_DATA_LENGTH, type Frame } from '../../../../src/shim/ttrpc/frame.js';

function expectProtocolError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, TtrpcError);
    assert.is((err as TtrpcError).code, 'TTRPC_PROTOCOL');
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected TTRPC_PROTOCOL matching ${pattern}`);
}

function header(length: number, streamId: number, type: number, flags = 0): Buffer {
  const b = Buffer.alloc(HEADER_LENGTH);
  b.writeUInt32BE(length, 0);
  b.writeUInt32BE(streamId, 4);
  b.writeUInt8(type, 8);
  b.writeUInt8(flags, 9);
  return b;
}

const plain = (f: Frame) => ({ streamId: f.streamId, type: f.type, flags: f.flags, data: f.data.toString('hex') });

test('encodeFrame: length (data only) and stream id big-endian, then type and flags', () => {
  const bytes = encodeFrame({ streamId: 0x01020305, type: FrameType.Request, flags: 0x02, data: Buffer.from([0xaa, 0xbb, 0xcc]) });
  assert.is(bytes.toString('hex'), '00000003' + '01020305' + '01' + '02' + 'aabbcc');
  assert.is(encodeFrame({ streamId: 7, type: FrameType.Response }).toString('hex'), '00000000' + '00000007' + '02' + '00');
});

test('encodeFrame refuses data over 4 MiB and stream ids that are not u32', () => {
  assert.is(encodeFrame({ streamId: 1, type: FrameType.Data, data: Buffer.alloc(MAX_DATA_LENGTH) }).length, HEADER_LENGTH + MAX_DATA_LENGTH);
  assert.throws(() => encodeFrame({ streamId: 1, type: FrameType.Data, data: Buffer.alloc(MAX_DATA_LENGTH + 1) }),
    (err: TtrpcError) => err.code === 'TTRPC_INVALID_ARGUMENT' && /4194305 bytes exceeds the 4194304-byte limit/.test(err.message));
  assert.throws(() => encodeFrame({ streamId: 2 ** 32, type: FrameType.Request }), (err: TtrpcError) => err.code === 'TTRPC_INVALID_ARGUMENT');
  assert.throws(() => encodeFrame({ streamId: -1, type: FrameType.Request }), (err: TtrpcError) => err.code === 'TTRPC_INVALID_ARGUMENT');
});

test('FrameDecoder: frames of every type, in one chunk, byte by byte and split anywhere', () => {
  const frames = [
    { streamId: 1, type: FrameType.Request, flags: 0, data: Buffer.from('request') },
    { streamId: 1, type: FrameType.Response, flags: 0, data: Buffer.alloc(0) },
    { streamId: 3, type: FrameType.Data, flags: 0x5, data: Buffer.from([0, 1, 2, 255]) },
    { streamId: 0xffffffff, type: FrameType.Response, flags: 0, data: Buffer.alloc(70_000, 0x5a) },
  ];
  const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
  const expected = frames.map(plain);
  assert.equal(new FrameDecoder().push(stream).map(plain), expected);
  const bytewise = new FrameDecoder();
  const got: Frame[] = [];
  for (const byte of stream) got.push(...bytewise.push(Buffer.from([byte])));
  assert.equal(got.map(plain), expected);
  assert.is(bytewise.bufferedBytes, 0);
  for (const cut of [1, 9, 10, 11, 17, 30, stream.length - 1]) {
    const d = new FrameDecoder();
    assert.equal([...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))].map(plain), expected, `cut at ${cut}`);
  }
});

test('FrameDecoder: a 4 MiB frame is accepted; one byte more is refused after the 4 length bytes, before its data', () => {
  const max = encodeFrame({ streamId: 1, type: FrameType.Request, data: Buffer.alloc(MAX_DATA_LENGTH, 1) });
  assert.is(new FrameDecoder().push(max)[0]!.data.length, MAX_DATA_LENGTH);
  const d = new FrameDecoder();
  d.push(header(MAX_DATA_LENGTH + 1, 1, 1).subarray(0, 3));
  expectProtocolError(() => d.push(Buffer.from([0x01])), /frame length 4194305 exceeds the maximum 4194304/);
  expectProtocolError(() => new FrameDecoder().push(header(0xffffffff, 1, 1)), /frame length 4294967295/);
});

test('FrameDecoder: an unknown type is refused once its byte arrives; frames before it are delivered', () => {
  for (const type of [0, 4, 255]) {
    const d = new FrameDecoder();
    const seen: Frame[] = [];
    const good = encodeFrame({ streamId: 1, type: FrameType.Request, data: Buffer.from('x') });
    expectProtocolError(() => d.feed(Buffer.concat([good, header(1, 3, type).subarray(0, 9)]), (f) => seen.push(f)), new RegExp(`frame type ${type} is unknown`));
    assert.is(seen.length, 1);
  }
});

test('FrameDecoder: a stream that ends inside a header or inside the data is truncated', () => {
  const d1 = new FrameDecoder();
  d1.push(header(5, 1, 1).subarray(0, 6));
  expectProtocolError(() => d1.end(), /ended inside a frame header \(6 of 10 bytes\)/);
  const d2 = new FrameDecoder();
  d2.push(Buffer.concat([header(5, 1, 1), Buffer.from('ab')]));
  expectProtocolError(() => d2.end(), /ended inside a frame \(2 of 5 data bytes\)/);
  const d3 = new FrameDecoder();
  d3.push(encodeFrame({ streamId: 1, type: FrameType.Request }));
  d3.end(); // between frames: a clean end
});

test('FrameDecoder: after an error every later push fails, naming the first error', () => {
  const d = new FrameDecoder();
  expectProtocolError(() => d.push(header(1, 1, 9)), /type 9/);
  assert.ok(d.failed);
  expectProtocolError(() => d.push(encodeFrame({ streamId: 1, type: FrameType.Request })), /stopped after an earlier error: .*type 9/);
});

test('FrameDecoder: an exception from onFrame is passed on as is and does not mark the stream bad', () => {
  const d = new FrameDecoder();
  const frame = encodeFrame({ streamId: 1, type: FrameType.Request });
  assert.throws(() => d.feed(frame, () => { throw new RangeError('mine'); }), (err: Error) => err instanceof RangeError);
  assert.not.ok(d.failed);
  assert.is(d.push(frame).length, 1);
});

test.run();
