// Shared by the holder's tests (holder.test.ts, holder-console.test.ts): a fake virtc-runtime daemon
// (a Node net.Server on a Unix socket) speaking the holder protocol with a frame codec of its own —
// deliberately independent of the daemon's TypeScript, so both sides are checked against the
// protocol in docs/holder.md rather than against each other — and starting a real vc-holder.
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
export const holderPath = join(root, 'build/Release/vc-holder');

export const T = {
  HELLO: 1, ACK: 2, STDIN: 3, STDIN_EOF: 4, STDOUT: 5, STDERR: 6, SIGNAL: 7, RESIZE: 8, ERROR: 9, EXIT: 10,
} as const;

export interface Frame { type: number; payload: Buffer }

/** `u8 type | u32 BE length | payload`. */
export function encode(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export const exited = (code: number) => encode(T.EXIT, Buffer.from([0, code]));
export const killed = (signal: number) => encode(T.EXIT, Buffer.from([1, signal]));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The daemon's end of one holder connection: every frame the holder sent, in order. */
export class DaemonConn {
  readonly frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  readonly closed: Promise<void>;

  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 5) {
        const length = this.buf.readUInt32BE(1);
        if (this.buf.length < 5 + length) break;
        this.frames.push({ type: this.buf[0]!, payload: this.buf.subarray(5, 5 + length) });
        this.buf = this.buf.subarray(5 + length);
      }
    });
    sock.on('error', () => {});
    this.closed = new Promise((resolve) => sock.on('close', () => resolve()));
  }

  send(frame: Buffer): void { this.sock.write(frame); }

  /** Removes and returns the first frame of `type` the holder sent, waiting up to `ms` for it. */
  async take(type: number, ms = 5000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no frame of type ${type} within ${ms} ms; got types [${this.frames.map((f) => f.type)}]`);
      await sleep(5);
    }
  }

  /** The HELLO's JSON, after which the holder waits for ACK or ERROR. */
  async hello(): Promise<any> {
    return JSON.parse((await this.take(T.HELLO)).payload.toString());
  }

  /** All STDIN bytes up to STDIN_EOF. */
  async stdinUntilEof(ms = 10000): Promise<Buffer> {
    await this.take(T.STDIN_EOF, ms);
    const data = this.frames.filter((f) => f.type === T.STDIN).map((f) => f.payload);
    return Buffer.concat(data);
  }
}

export class FakeDaemon {
  private pending: DaemonConn[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(readonly server: Server, readonly path: string) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      this.pending.push(new DaemonConn(s));
    });
  }

  static async start(dir: string, name = 'daemon.sock'): Promise<FakeDaemon> {
    const path = join(dir, name);
    const server = createServer();
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(path, resolve); });
    return new FakeDaemon(server, path);
  }

  async accept(ms = 5000): Promise<DaemonConn> {
    const deadline = Date.now() + ms;
    while (this.pending.length === 0) {
      if (Date.now() > deadline) throw new Error(`no holder connected to ${this.path} within ${ms} ms`);
      await sleep(5);
    }
    return this.pending.shift()!;
  }

  /** Stops listening and drops every connection, so nothing keeps the test process alive. */
  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

export interface RunningHolder {
  proc: ChildProcess;
  stdout: () => Buffer;
  stderr: () => string;
  /** code (exited) or signal (killed): what the engine's waitpid would see. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Holders still running are killed by killHolders (each file's test.after: after a failed
// assertion they would keep this process, and the test run, waiting) and when this process ends.
const running = new Set<ChildProcess>();
export function killHolders(): void {
  for (const proc of running) proc.kill('SIGKILL');
}
process.on('exit', killHolders);

export function startHolder(args: string[], stdio: StdioOptions = ['pipe', 'pipe', 'pipe']): RunningHolder {
  assert.ok(existsSync(holderPath), `${holderPath} does not exist: run \`npx node-gyp build\` first`);
  const proc = spawn(holderPath, args, { stdio });
  const out: Buffer[] = [];
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => out.push(d));
  proc.stderr?.on('data', (d: Buffer) => { err += d; });
  proc.stdin?.on('error', () => {});
  // 'close', not 'exit': by then the holder's last output has been read too.
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal })));
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  return { proc, stdout: () => Buffer.concat(out), stderr: () => err, exit };
}

/** Resident memory of a process in KiB (VmRSS in /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Resolves with the value, or rejects naming what did not happen within `ms`. */
export function within<V>(what: string, p: Promise<V>, ms = 5000): Promise<V> {
  return Promise.race([p, sleep(ms).then(() => { throw new Error(`${what}: not within ${ms} ms`); })]);
}
