/**
 * Port forwarding over the agent channel (docs/agent-protocol.md, "Port forwarding"): the
 * `forward` op's arguments, checked before anything is sent, and the forwarded TCP connection as
 * a Node Duplex built on the process stream the agent registers for it.
 */
import { isIP } from 'node:net';
import { Duplex } from 'node:stream';
import { AgentError, describeValue } from './errors.js';
import type { AgentProcess } from './process.js';
import type { ExitStatus, JsonObject } from './protocol.js';

export interface ForwardTarget {
  /** An IPv4 or IPv6 address in the guest; default 127.0.0.1 (the loopback the containers share). */
  host?: string;
}

export const DEFAULT_FORWARD_HOST = '127.0.0.1';

function invalid(message: string): AgentError {
  return new AgentError('AGENT_INVALID_ARGUMENT', `forward: ${message}`, { op: 'forward' });
}

/** Checks the port and host as the agent does; the error names the field and the value. */
export function forwardArguments(port: unknown, target: ForwardTarget = {}): JsonObject {
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
    throw invalid(`port must be an integer 1..65535, got ${describeValue(port)}`);
  }
  if (target === null || typeof target !== 'object') throw invalid(`options must be an object, got ${describeValue(target)}`);
  const args: JsonObject = { port };
  if (target.host !== undefined) {
    if (typeof target.host !== 'string' || isIP(target.host) === 0) {
      throw invalid(`host must be an IPv4 or IPv6 address, got ${describeValue(target.host)}`);
    }
    args.host = target.host;
  }
  return args;
}

/** "127.0.0.1:80", "[::1]:80": how messages name a forward's guest end. */
export function forwardTargetName(port: number, host = DEFAULT_FORWARD_HOST): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One forwarded TCP connection to the guest. Writing sends to the guest socket (within the STDIN
 * window); end() half-closes it (the guest peer reads its end of file and may still answer); what
 * the guest peer sends is read here, and its end of file ends this stream. A failure in the guest
 * (a reset, a write the peer refused) destroys the stream with FORWARD_FAILED; destroy() closes
 * the guest socket. `ended` settles once the agent has finished the forward (its EXIT), or
 * rejects when the agent connection went first.
 */
export class AgentForward extends Duplex {
  /** The agent's process id of the forward. */
  readonly id: number;
  /** Guest address and port, e.g. "127.0.0.1:8080". */
  readonly target: string;
  readonly ended: Promise<ExitStatus>;
  readonly #proc: AgentProcess;

  /** @internal Use AgentClient.forward(). */
  constructor(proc: AgentProcess, target: string) {
    super({ allowHalfOpen: true });
    this.id = proc.id;
    this.target = target;
    this.#proc = proc;
    // Output is pushed as it arrives: like process output, v1 has no window towards the host
    // (pausing the shared agent connection for one slow reader would stall every other stream).
    proc.stdout.on('data', (chunk: Buffer) => this.push(chunk));
    proc.stdout.on('end', () => this.push(null));
    proc.stdin.on('error', () => {}); // surfaced through _write's callback
    this.ended = proc.wait();
    this.ended.then(
      (status) => this.#onExit(status),
      (err: AgentError) => this.destroy(err),
    );
  }

  override _read(): void {
    // Data is pushed as frames arrive.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#proc.stdin.write(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#proc.stdin.end(); // an empty STDIN frame: shutdown(SHUT_WR) in the guest
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Any signal closes a forward's socket; nothing to do once the agent has finished it.
    if (!this.#proc.exited) this.#proc.kill('SIGKILL').catch(() => {});
    this.#proc.stdin.destroy();
    callback(err);
  }

  #onExit(status: ExitStatus): void {
    if (this.destroyed || status.exitCode === 0) return;
    const why = status.error ?? (status.signal ? `closed by ${status.signal}` : `exit code ${status.exitCode}`);
    this.destroy(new AgentError('FORWARD_FAILED', `forward to ${this.target}: ${why}`, { op: 'forward' }));
  }
}
