// Bounded fuzzing of the ttrpc frame decoder and of the Request/Response decoding behind it, with a
// fixed seed: random bytes and mutated valid frames, fed in random chunks. The decoder may only
// ever throw TtrpcError('TTRPC_PROTOCOL'), never hold more than one frame, and never report a
// frame it has not received whole; the message decoders only ProtoDecodeError.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { common, ProtoDecodeError } from '../../../../src/shim/proto/messages.js';
import { TtrpcError } from '../../../../src/shim/ttrpc/errors.js';
import { encodeFrame, FrameDecoder, FrameType, HEADER_LENGTH, MAX_DATA_LENGTH, type Frame } from '../../../../src/shim/ttrpc/frame.js';
import { prng } from '../../../helpers/prng.js';

const random = prng(0x77_7c_0d_e5);
const int = (n: number): number => Math.floor(random() * n);

function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

const request = common.Request.encode({
  service: 'containerd.task.v2.Task',
  method: 'State',
  payload: Buffer.from('0a026331', 'hex'),
  timeoutNano: 5_000_000_000,
  metadata: [{ key: 'containerd-namespace-ttrpc', value: 'default' }],
});
const response = common.Response.encode({ status: { code: 5, message: 'task c1 not found' }, payload: Buffer.from([1, 2, 3]) });

const validFrames: Buffer[] = [
  encodeFrame({ streamId: 1, type: FrameType.Request, data: request }),
  encodeFrame({ streamId: 1, type: FrameType.Response, data: response }),
  encodeFrame({ streamId: 3, type: FrameType.Data, flags: 1, data: Buffer.from('data') }),
  encodeFrame({ streamId: 5, type: FrameType.Response }),
];

function mutate(frame: Buffer): Buffer {
  const b = Buffer.from(frame);
  for (let edits = 1 + int(4); edits > 0; edits--) {
    switch (int(5)) {
      case 0: // flip a bit anywhere
        b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // a random byte in the header
        b[int(HEADER_LENGTH)] = int(256);
        break;
      case 2: // lengths around the bounds and around the real one
        b.writeUInt32BE([0, 1, Math.max(0, b.length - HEADER_LENGTH - 1), b.length - HEADER_LENGTH + 1, MAX_DATA_LENGTH, MAX_DATA_LENGTH + 1, 0xffffffff][int(7)]!, 0);
        break;
      case 3: // types around the valid ones
        b[8] = [0, 1, 2, 3, 4, 0x80, 0xff][int(7)]!;
        break;
      case 4: // truncate
        return b.subarray(0, int(b.length + 1));
    }
  }
  return b;
}

/**
 * Feeds `input` in random chunks; returns the frames and the error, checking the invariants. With
 * `ends` (where each frame of a valid input ends), checks that every frame comes out as soon as
 * its last byte is in: the decoder never waits for more than a frame's announced length.
 */
function decodeAll(input: Buffer, ends?: number[]): { frames: Frame[]; error: unknown } {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let offset = 0;
  try {
    while (offset < input.length) {
      const size = 1 + int(Math.min(input.length - offset, 64));
      decoder.feed(input.subarray(offset, offset + size), (f) => frames.push(f));
      offset += size;
      assert.ok(decoder.bufferedBytes <= HEADER_LENGTH + MAX_DATA_LENGTH);
      // Never more than what is outstanding of the input: nothing is invented or waited for past a frame.
      assert.ok(decoder.bufferedBytes <= offset);
      if (ends) assert.is(frames.length, ends.filter((end) => end <= offset).length, `frames out after ${offset} bytes`);
    }
    decoder.end();
  } catch (err) {
    return { frames, error: err };
  }
  return { frames, error: null };
}

function checkOnlyProtocolErrors(label: string, error: unknown): void {
  if (error === null) return;
  if (!(error instanceof TtrpcError) || error.code !== 'TTRPC_PROTOCOL') {
    assert.unreachable(`${label}: unexpected ${String(error)}`);
  }
}

/** Every frame the decoder gives up is whole and its fields are in range; Request/Response decode or fail cleanly. */
function checkFrames(frames: Frame[]): void {
  for (const f of frames) {
    assert.ok([FrameType.Request, FrameType.Response, FrameType.Data].includes(f.type));
    assert.ok(f.data.length <= MAX_DATA_LENGTH);
    for (const codec of [common.Request, common.Response]) {
      try {
        codec.decode(f.data);
      } catch (err) {
        if (!(err instanceof ProtoDecodeError)) assert.unreachable(`${codec.typeName}: unexpected ${String(err)}`);
      }
    }
  }
}

test('random bytes: only protocol errors, no more buffered than received', () => {
  for (let i = 0; i < 3000; i++) {
    const { frames, error } = decodeAll(randomBytes(int(300)));
    checkOnlyProtocolErrors(`random input ${i}`, error);
    checkFrames(frames);
  }
});

test('mutated valid frames, alone and in sequences: only protocol errors; unmutated frames come out intact', () => {
  let clean = 0;
  for (let i = 0; i < 5000; i++) {
    const parts = Array.from({ length: 1 + int(4) }, () => {
      const frame = validFrames[int(validFrames.length)]!;
      return random() < 0.5 ? frame : mutate(frame);
    });
    const input = Buffer.concat(parts);
    const valid = parts.every((p) => validFrames.includes(p));
    const ends = valid ? parts.map((_, n) => parts.slice(0, n + 1).reduce((sum, p) => sum + p.length, 0)) : undefined;
    const { frames, error } = decodeAll(input, ends);
    checkOnlyProtocolErrors(`sequence ${i}`, error);
    checkFrames(frames);
    if (valid) {
      assert.is(error, null);
      clean += 1;
      assert.equal(frames.map((f) => encodeFrame(f)), parts);
    }
  }
  assert.ok(clean > 100, `only ${clean} unmutated sequences`);
});

test('random Request/Response payloads: decoding fails only with ProtoDecodeError', () => {
  for (let i = 0; i < 5000; i++) {
    const bytes = random() < 0.5 ? randomBytes(int(100)) : Buffer.from(random() < 0.5 ? request : response).map((b) => (random() < 0.05 ? int(256) : b));
    checkFrames([{ streamId: 1, type: FrameType.Request, flags: 0, data: Buffer.from(bytes) }]);
  }
});

test.run();
