// A small QMP client: one command at a time over QEMU's monitor socket, events ignored. The
// socket is made by the addon (a plain fd wrapped in a net.Socket) so that a command can carry an
// open file to QEMU (`add-fd`), which Node's sockets cannot send.
import { Socket } from 'node:net';
import { VcError } from '../../errors.js';
import { native } from '../../native.js';

type QmpMessage = { QMP?: unknown; return?: unknown; error?: { class: string; desc: string }; event?: string; id?: number };

export class QmpClient {
  private buffer = '';
  private readonly waiting: Array<(message: QmpMessage) => void> = [];
  private closedError: Error | undefined;
  private nextId = 1;

  private constructor(private readonly socket: Socket, private readonly fd: number) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new VcError('HYPERVISOR_FAILED', 'QMP connection closed')));
    socket.on('error', (err) => this.fail(new VcError('HYPERVISOR_FAILED', `QMP connection failed: ${err.message}`, { cause: err })));
  }

  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const fd = await connectUnix(path, timeoutMs);
    const socket = new Socket({ fd, readable: true, writable: true });
    const client = new QmpClient(socket, fd);
    const timer = setTimeout(() => socket.destroy(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
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
    this.socket.write(commandLine(command, args, id));
    return this.reply(command, id);
  }

  /**
   * `command` with `fd` attached (for `add-fd`, `getfd`); the caller still owns `fd`. Sent by the
   * addon on the socket's fd: nothing else is being written, since commands go one at a time.
   */
  async executeWithFd(command: string, args: Record<string, unknown>, fd: number): Promise<unknown> {
    if (this.closedError) throw this.closedError;
    const id = this.nextId++;
    if (this.socket.writableLength > 0) throw new VcError('HYPERVISOR_FAILED', `QMP ${command}: a write is still pending on the connection`);
    try {
      native().sendWithFd(this.fd, Buffer.from(commandLine(command, args, id)), fd);
    } catch (err) {
      throw new VcError('HYPERVISOR_FAILED', `QMP ${command}: cannot pass a file to qemu: ${(err as Error).message}`, { cause: err });
    }
    return this.reply(command, id);
  }

  private async reply(command: string, id: number): Promise<unknown> {
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

function commandLine(command: string, args: Record<string, unknown> | undefined, id: number): string {
  return `${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`;
}

/** A connected socket's fd; a listener whose backlog is full is retried until `timeoutMs`. */
async function connectUnix(path: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return native().unixConnect(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' || Date.now() >= deadline) {
        throw new VcError('HYPERVISOR_FAILED', `cannot talk QMP on ${path}: ${(err as Error).message}${code ? ` (${code})` : ''}`, { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
