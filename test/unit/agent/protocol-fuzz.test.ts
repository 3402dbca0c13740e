// Bounded fuzzing of the host decoder with a fixed seed: random bytes and mutated valid frames, fed
// in random chunks. The only thing it may ever throw is AgentError('AGENT_PROTOCOL').
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
  MAX_FRAME_LENGTH,
  type Frame,
} from '../../../src/agent/protocol.js';
import { FrameDecoder } from '../../../src/agent/decoder.js';
import { prng } from '../../helpers/prng.js';


const random = prng(0x5eed_a9e7);
const int = (n: number): number => Math.floor(random() * n);

function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

const validFrames: Buffer[] = [
  encodeRequest(1, 'hello', { version: 1 }),
  encodeResponse(1, { ok: true, result: { version: 1, agent: 'vc-agent 0.1.0' } }),
  encodeResponse(2, { ok: false, error: { code: 'EXEC_FAILED', message: 'nosuch: No such file or directory' } }),
  encodeFrame(FrameType.STDIN, 3, Buffer.from('input')),
  encodeFrame(FrameType.STDOUT, 3, Buffer.from('out\n')),
  encodeFrame(FrameType.STDERR, 3),
  encodeExit(3, { exitCode: 0, signal: null }),
  encodeExit(3, { exitCode: null, signal: 'SIGKILL' }),
  encodeStdinAck(3, 1234),
];

function mutate(frame: Buffer): Buffer {
  const b = Buffer.from(frame);
  const edits = 1 + int(4);
  for (let e = 0; e < edits; e++) {
    switch (int(5)) {
      case 0: // flip a bit
        if (b.length > 0) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // random byte, biased to the header
        b[int(Math.min(b.length, 16))] = int(256);
        break;
      case 2: // plausible lengths around the bounds
        b.writeUInt32BE([0, 7, 8, 9, b.length - 4, b.length - 3, MAX_FRAME_LENGTH, MAX_FRAME_LENGTH + 1, 0xffffffff][int(9)]!, 0);
        break;
      case 3: // truncate
        return b.subarray(0, int(b.length + 1));
      case 4: // swap in a JSON-ish payload
        return Buffer.concat([b.subarray(0, 12), Buffer.from(['{', '}', '[]', '{"ok":true}', '{"exitCode":1}', '\u00ff', '"'][int(7)]!)]);
    }
  }
  return b;
}

/** Feeds `bytes` in random chunks; returns frames, or the AgentError the decoder threw. */
function feedRandomly(bytes: Buffer): { frames: Frame[]; error?: AgentError } {
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  let offset = 0;
  try {
    while (offset < bytes.length) {
      const size = 1 + int(Math.min(64, bytes.length - offset));
      frames.push(...d.push(bytes.subarray(offset, offset + size)));
      offset += size;
      assert.ok(d.bufferedBytes <= 12 + MAX_FRAME_LENGTH, 'holds at most one frame');
    }
  } catch (err) {
    if (!(err instanceof AgentError)) throw new Error(`decoder threw a non-AgentError: ${String(err)}`, { cause: err });
    assert.is(err.code, 'AGENT_PROTOCOL');
    return { frames, error: err };
  }
  return { frames };
}

function checkFrameShape(frame: Frame): void {
  assert.ok(frame.type >= 1 && frame.type <= 7);
  assert.ok(Number.isInteger(frame.id) && frame.id >= 0 && frame.id <= 0xffffffff);
  if (frame.type === FrameType.EXIT) {
    assert.ok(frame.status.exitCode === null || Number.isInteger(frame.status.exitCode));
    assert.ok(frame.status.signal === null || typeof frame.status.signal === 'string');
  }
  if (frame.type === FrameType.RESPONSE) {
    if (frame.response.ok) assert.type(frame.response.result, 'object');
    else assert.type(frame.response.error.code, 'string');
  }
}

test('20 000 random buffers: only AgentError(AGENT_PROTOCOL) or valid frames', () => {
  let errors = 0;
  for (let i = 0; i < 20_000; i++) {
    const { frames, error } = feedRandomly(randomBytes(int(96)));
    frames.forEach(checkFrameShape);
    if (error) errors += 1;
  }
  // Random bytes almost always break the header; make sure the loop really exercised the errors.
  assert.ok(errors > 15_000, `only ${errors} errors`);
});

test('20 000 mutated valid frame sequences: only AgentError(AGENT_PROTOCOL) or valid frames', () => {
  let errors = 0;
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const parts: Buffer[] = [];
    for (let n = 1 + int(4); n > 0; n--) {
      const frame = validFrames[int(validFrames.length)]!;
      parts.push(random() < 0.5 ? mutate(frame) : frame);
    }
    const { frames, error } = feedRandomly(Buffer.concat(parts));
    frames.forEach(checkFrameShape);
    decoded += frames.length;
    if (error) errors += 1;
  }
  assert.ok(errors > 1000, `only ${errors} errors`);
  assert.ok(decoded > 1000, `only ${decoded} frames decoded`);
});

test.run();
