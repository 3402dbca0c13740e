// A scriptable stand-in for vc-agent on a real Unix socket, for unit tests of the host client.
// It answers `hello` by itself (unless told not to) and queues every other frame for the test,
// which replies by hand: that is how tests control ordering, timing and malformed input.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dialUnix } from '../../../src/agent/dial.js';
import {
  encodeExit,
  encodeFrame,
  encodeResponse,
  encodeStdinAck,
  FrameType,
  type ExitStatus,
  type Frame,
  type JsonObject,
  type RequestFrame,
} from '../../../src/agent/protocol.js';
import { FrameDecoder } from '../../../src/agent/decoder.js';

export type HelloMode = 'auto' | 'manual';

export class FakeConn {
  readonly socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #inbox: Frame[] = [];
  #wake: (() => void) | null = null;
  /** STDIN payload bytes received per process id (close frames not counted). */
  readonly stdinBytes = new Map<number, number>();
  readonly stdinData = new Map<number, Buffer[]>();
  readonly closed: Promise<void>;
  decodeError: Error | null = null;

  constructor(socket: Socket, hello: HelloMode) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.#decoder.push(chunk);
      } catch (err) {
        this.decodeError = err as Error;
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (hello === 'auto' && frame.type === FrameType.REQUEST && frame.op === 'hello') {
          this.reply(frame.id, { version: 1, agent: 'fake-agent 1' });
          continue;
        }
        if (frame.type === FrameType.STDIN && frame.data.length > 0) {
          this.stdinBytes.set(frame.id, (this.stdinBytes.get(frame.id) ?? 0) + frame.data.length);
          this.stdinData.set(frame.id, [...(this.stdinData.get(frame.id) ?? []), Buffer.from(frame.data)]);
        }
        this.#inbox.push(frame);
      }
      this.#wake?.();
    });
  }

  /** The next received frame matching `match` (frames that do not match stay queued). */
  async next<T extends Frame = Frame>(match: (frame: Frame) => boolean = () => true, timeoutMs = 2000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#inbox.findIndex(match);
      if (index >= 0) return this.#inbox.splice(index, 1)[0] as T;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake agent: no matching frame within ${timeoutMs} ms (queued: ${this.#inbox.map((f) => f.type).join(',')})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  nextRequest(op?: string, timeoutMs?: number): Promise<RequestFrame> {
    return this.next<RequestFrame>((f) => f.type === FrameType.REQUEST && (op === undefined || f.op === op), timeoutMs);
  }

  /** Frames received and not yet taken by next(). */
  get queued(): readonly Frame[] {
    return this.#inbox;
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }
  reply(id: number, result: JsonObject = {}): void {
    this.send(encodeResponse(id, { ok: true, result }));
  }
  fail(id: number, code: string, message: string): void {
    this.send(encodeResponse(id, { ok: false, error: { code, message } }));
  }
  static stdout(id: number, data: string | Buffer = ''): Buffer {
    return encodeFrame(FrameType.STDOUT, id, typeof data === 'string' ? Buffer.from(data) : data);
  }
  static stderr(id: number, data: string | Buffer = ''): Buffer {
    return encodeFrame(FrameType.STDERR, id, typeof data === 'string' ? Buffer.from(data) : data);
  }
  static exit(id: number, status: ExitStatus): Buffer {
    return encodeExit(id, status);
  }
  ack(id: number, count: number): void {
    this.send(encodeStdinAck(id, count));
  }
}

export class FakeAgent {
  static readonly #running = new Set<FakeAgent>();
  readonly path: string;
  readonly #dir: string;
  readonly #server: Server;
  readonly #accepted: FakeConn[] = [];
  readonly #all: FakeConn[] = [];
  #wake: (() => void) | null = null;
  hello: HelloMode = 'auto';

  private constructor(dir: string, server: Server) {
    this.#dir = dir;
    this.path = join(dir, 'agent.sock');
    this.#server = server;
    server.on('connection', (socket) => {
      const conn = new FakeConn(socket, this.hello);
      this.#accepted.push(conn);
      this.#all.push(conn);
      this.#wake?.();
    });
  }

  static async start(): Promise<FakeAgent> {
    const dir = mkdtempSync(join(tmpdir(), 'vc-fake-agent-'));
    const agent = new FakeAgent(dir, createServer());
    FakeAgent.#running.add(agent);
    await new Promise<void>((resolve, reject) => {
      agent.#server.once('error', reject);
      agent.#server.listen(agent.path, resolve);
    });
    return agent;
  }

  readonly dial = (): Promise<Socket> => dialUnix(this.path, { timeoutMs: 2000 });

  async nextConnection(timeoutMs = 2000): Promise<FakeConn> {
    const deadline = Date.now() + timeoutMs;
    while (this.#accepted.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('fake agent: no connection');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = null;
          resolve();
        };
      });
    }
    return this.#accepted.shift()!;
  }

  /** For test.after.each: a failed test must not leave a server that keeps the process alive. */
  static async stopAll(): Promise<void> {
    await Promise.all([...FakeAgent.#running].map((agent) => agent.stop()));
  }

  async stop(): Promise<void> {
    if (!FakeAgent.#running.delete(this)) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const conn of this.#all) conn.socket.destroy();
    });
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Rejects if `promise` does not settle within `ms`: a broken client fails the test, not hangs it. */
export function within<T>(promise: Promise<T>, ms = 2000, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not settle within ${ms} ms`), { code: 'TEST_TIMEOUT' })), ms);
    }),
  ]);
}

/** The rejection of `promise` (fails if it resolves). */
export async function rejection(promise: Promise<unknown>, ms = 2000): Promise<Error & { code?: string; op?: string }> {
  try {
    await within(promise, ms, 'expected rejection');
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection, got a value');
}
