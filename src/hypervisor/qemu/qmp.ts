// A small QMP client: one command at a time over QEMU's monitor socket, events ignored.
import { createConnection, type Socket } from 'node:net';
import { VcError } from '../../errors.js';

type QmpMessage = { QMP?: unknown; return?: unknown; error?: { class: string; desc: string }; event?: string; id?: number };

export class QmpClient {
  private buffer = '';
  private readonly waiting: Array<(message: QmpMessage) => void> = [];
  private closedError: Error | undefined;
  private nextId = 1;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new VcError('HYPERVISOR_FAILED', 'QMP connection closed')));
    socket.on('error', (err) => this.fail(new VcError('HYPERVISOR_FAILED', `QMP connection failed: ${err.message}`, { cause: err })));
  }

  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = createConnection(path);
    const client = new QmpClient(socket);
    const timer = setTimeout(() => socket.destroy(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const greeting = await client.next();
      if (!greeting.QMP) throw new VcError('HYPERVISOR_FAILED', `unexpected QMP greeting: ${JSON.stringify(greeting)}`);
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      socket.destroy();
      throw err instanceof VcError ? err : new VcError('HYPERVISOR_FAILED', `cannot talk QMP on ${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    for (;;) {
      const message = await this.next();
      if (message.id !== id) continue;
      if (message.error) throw new VcError('HYPERVISOR_FAILED', `QMP ${command}: ${message.error.class}: ${message.error.desc}`);
      return message.return;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private next(): Promise<QmpMessage> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const onMessage = (message: QmpMessage) => resolve(message);
      (onMessage as { reject?: (e: Error) => void }).reject = reject;
      this.waiting.push(onMessage);
      this.drain();
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    this.drain();
  }

  private drain(): void {
    for (let nl = this.buffer.indexOf('\n'); nl >= 0 && this.waiting.length; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let message: QmpMessage;
      try {
        message = JSON.parse(line) as QmpMessage;
      } catch {
        this.fail(new VcError('HYPERVISOR_FAILED', `QMP sent a line that is not JSON: ${line.slice(0, 80)}`));
        return;
      }
      if (message.event) continue;
      this.waiting.shift()?.(message);
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const waiter of this.waiting.splice(0)) (waiter as { reject?: (e: Error) => void }).reject?.(err);
  }
}
