// Shared by the agent binary's tests (agent.test.ts, agent-containers.test.ts): a frame codec and
// connection of their own, and starting `vc-agent --serve-unix`. The codec is deliberately
// independent of src/agent/protocol.ts, so the two sides are checked against
// docs/agent-protocol.md rather than against each other.
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
export const agentPath = join(root, 'build/Release/vc-agent');
export const AGENT_NAME = 'vc-agent 0.1.0';

export const T = { REQUEST: 1, RESPONSE: 2, STDIN: 3, STDOUT: 4, STDERR: 5, EXIT: 6, STDIN_ACK: 7 } as const;

export interface Frame { type: number; id: number; payload: Buffer }

export function encode(type: number, id: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(12);
  head.writeUInt32BE(8 + body.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(id, 8);
  return Buffer.concat([head, body]);
}

export interface ProcEvents {
  stdout: Buffer[]; stderr: Buffer[]; stdoutEnded: boolean; stderrEnded: boolean;
  exit?: { exitCode: number | null; signal: string | null }; acked: number;
  order: string[]; // 'out' | 'err' | 'out-end' | 'err-end' | 'exit', as received
}

export const text = (bufs: Buffer[]) => Buffer.concat(bufs).toString();

// One protocol connection: request/response matching, per-process stream collection.
export class Conn {
  private buf = Buffer.alloc(0);
  private nextId = 1;
  readonly waiting = new Map<number, (v: any) => void>();
  readonly procs = new Map<number, ProcEvents>();
  readonly notices: any[] = []; // RESPONSEs with id 0
  readonly unmatched: any[] = [];
  closed: Promise<void>;
  private listeners: (() => void)[] = [];

  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => {});
    this.closed = new Promise((resolve) => sock.on('close', () => resolve()));
  }

  static async open(path: string): Promise<Conn> {
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    return new Conn(sock);
  }

  /** Opens a connection and says hello. */
  static async hello(path: string): Promise<Conn> {
    const c = await Conn.open(path);
    const r = await c.ok('hello', { version: 1 });
    assert.equal(r, { version: 1, agent: AGENT_NAME, epoch: 0, restorePending: false });
    return c;
  }

  proc(id: number): ProcEvents {
    let p = this.procs.get(id);
    if (!p) {
      p = { stdout: [], stderr: [], stdoutEnded: false, stderrEnded: false, acked: 0, order: [] };
      this.procs.set(id, p);
    }
    return p;
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) break;
      const f: Frame = { type: this.buf[4]!, id: this.buf.readUInt32BE(8), payload: this.buf.subarray(12, 4 + len) };
      this.buf = this.buf.subarray(4 + len);
      this.onFrame(f);
    }
    for (const l of this.listeners.splice(0)) l();
  }

  private onFrame(f: Frame): void {
    if (f.type === T.RESPONSE) {
      const v = JSON.parse(f.payload.toString());
      if (f.id === 0) { this.notices.push(v); return; }
      const w = this.waiting.get(f.id);
      if (!w) { this.unmatched.push(v); return; } // to a request sent with send()
      this.waiting.delete(f.id);
      w(v);
      return;
    }
    const p = this.proc(f.id);
    if (f.type === T.STDOUT) {
      assert.not.ok(p.stdoutEnded, 'STDOUT after its end');
      if (f.payload.length === 0) { p.stdoutEnded = true; p.order.push('out-end'); } else { p.stdout.push(Buffer.from(f.payload)); p.order.push('out'); }
    } else if (f.type === T.STDERR) {
      assert.not.ok(p.stderrEnded, 'STDERR after its end');
      if (f.payload.length === 0) { p.stderrEnded = true; p.order.push('err-end'); } else { p.stderr.push(Buffer.from(f.payload)); p.order.push('err'); }
    } else if (f.type === T.EXIT) {
      assert.not.ok(p.exit, 'EXIT twice');
      p.exit = JSON.parse(f.payload.toString());
      p.order.push('exit');
    } else if (f.type === T.STDIN_ACK) {
      assert.is(f.payload.length, 4);
      p.acked += f.payload.readUInt32BE(0);
    } else {
      assert.unreachable(`unexpected frame type ${f.type}`);
    }
  }

  send(frame: Buffer): void { this.sock.write(frame); }

  request(op: string, args: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    const p = new Promise<any>((resolve) => this.waiting.set(id, resolve));
    this.send(encode(T.REQUEST, id, JSON.stringify({ op, ...args })));
    return p;
  }

  async ok(op: string, args: Record<string, unknown> = {}): Promise<any> {
    const r = await this.request(op, args);
    assert.ok(r.ok, `${op} failed: ${JSON.stringify(r)}`);
    return r.result;
  }

  async errorCode(op: string, args: Record<string, unknown> = {}): Promise<{ code: string; message: string }> {
    const r = await this.request(op, args);
    assert.is(r.ok, false, `${op} should fail: ${JSON.stringify(r)}`);
    return r.error;
  }

  // Resolves once cond() holds (re-checked after every chunk of input).
  async until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.listeners.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  async finished(id: number): Promise<ProcEvents> {
    const p = this.proc(id);
    await this.until(() => p.exit !== undefined, `EXIT of process ${id}`);
    return p;
  }

  close(): void { this.sock.destroy(); }
}

export interface RunningAgent {
  proc: ChildProcess;
  sockPath: string;
  /** Resolves with the agent's exit code. */
  exited: Promise<number | null>;
  stderr(): string;
  kill(): void;
}

/**
 * Starts `vc-agent --serve-unix <dir>/agent.sock [...extraArgs]` and waits until it is ready.
 * `wrap` is a command that execs the agent in place (e.g. `['unshare', '-n', '--']` for a network
 * namespace of its own): the child's pid is then the agent's.
 */
export async function startAgent(dir: string, extraArgs: string[] = [], wrap: string[] = []): Promise<RunningAgent> {
  assert.ok(existsSync(agentPath), `${agentPath} does not exist: run \`npx node-gyp rebuild\` first`);
  const sockPath = join(dir, 'agent.sock');
  const argv = [...wrap, agentPath, '--serve-unix', sockPath, ...extraArgs];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const kill = () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); };
  // also when a failed assertion ends this process before test.after runs
  process.on('exit', kill);
  const deadline = Date.now() + 5000;
  while (!stderr.includes('vc-agent: ready')) {
    if (Date.now() > deadline) throw new Error(`agent not ready: ${stderr}`);
    if (proc.exitCode !== null) throw new Error(`agent exited ${proc.exitCode}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { proc, sockPath, exited, stderr: () => stderr, kill };
}
