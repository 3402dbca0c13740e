// The guest side of a fake VM: a Unix socket server that answers the real agent protocol by
// itself (hello, shutdown and the container ops), keeping container states the way vc-agent does.
// Tests make an op fail by naming it in `failOps`.
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeResponse, FrameType, type JsonObject, type RequestFrame } from '../../src/agent/protocol.js';
import { FrameDecoder } from '../../src/agent/decoder.js';

export interface AgentFailure {
  code: string;
  message: string;
  /** Never answer instead (a guest that hangs). */
  silent?: boolean;
  /** Only requests whose `id` argument (a container id) is this one. */
  id?: string;
}

type GuestContainerState = 'created' | 'running' | 'paused' | 'stopped';

export class FakeGuest {
  readonly containers = new Map<string, GuestContainerState>();
  /** Every request the guest answered, in order ("op" or "op:container-id"). */
  readonly requests: string[] = [];
  /** The arguments of each create_container, by container id. */
  readonly createArgs = new Map<string, JsonObject>();
  /** The arguments of every put_file, in order. */
  readonly putFiles: JsonObject[] = [];
  readonly failOps = new Map<string, AgentFailure>();
  shutdownRequested = false;
  /** configure_network requests answered (one per pod start). */
  networkConfigured = 0;
  /** As vc-agent: 0 until a `restored` is applied; while `restorePending`, only hello and restored are served. */
  epoch = 0;
  restorePending = false;
  /** The arguments of every `restored` applied, in order. */
  readonly restoredArgs: JsonObject[] = [];
  /**
   * The next this many connections are closed at their first request, unanswered: what a restored
   * Linux guest does to a connection it accepted before it handled the vsock transport reset.
   */
  closeNextConnections = 0;
  /** Close the connection right after applying a `restored`, before its answer goes out (once). */
  closeAfterRestored = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #nextProcess = 1;

  private constructor(readonly path: string) {
    this.#server = createServer((socket) => this.#serve(socket));
  }

  /** Run before each request is answered (the fake hypervisor's onStep, as "agent:OP"). */
  onRequest: ((op: string) => void) | undefined;

  static async listen(path: string, failOps: ReadonlyMap<string, AgentFailure>, onRequest?: (op: string) => void): Promise<FakeGuest> {
    const guest = new FakeGuest(path);
    guest.onRequest = onRequest;
    for (const [op, failure] of failOps) guest.failOps.set(op, failure);
    await new Promise<void>((resolve, reject) => {
      guest.#server.once('error', reject);
      guest.#server.listen(path, resolve);
    });
    return guest;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    const decoder = new FrameDecoder();
    let first = true;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.type !== FrameType.REQUEST) continue;
        if (first && this.closeNextConnections > 0) {
          this.closeNextConnections--;
          this.requests.push(`closed-at:${frame.op}`);
          socket.destroy();
          return;
        }
        first = false;
        const answer = this.#answer(frame);
        if (frame.op === 'restored' && this.closeAfterRestored && answer && 'result' in answer) {
          this.closeAfterRestored = false;
          socket.destroy();
          return;
        }
        if (answer) socket.write(encodeResponse(frame.id, answer));
      }
    });
  }

  #answer(frame: RequestFrame): Parameters<typeof encodeResponse>[1] | undefined {
    const id = typeof frame.args.id === 'string' ? frame.args.id : undefined;
    this.requests.push(id === undefined ? frame.op : `${frame.op}:${id}`);
    try {
      this.onRequest?.(frame.op);
    } catch (err) {
      return { ok: false, error: { code: 'INTERNAL', message: (err as Error).message } };
    }
    const failure = this.failOps.get(frame.op);
    if (failure && (failure.id === undefined || failure.id === id)) {
      return failure.silent ? undefined : { ok: false, error: { code: failure.code, message: failure.message } };
    }
    if (this.restorePending && frame.op !== 'hello' && frame.op !== 'restored') {
      return { ok: false, error: { code: 'RESTORE_PENDING', message: `restored from a snapshot: send \`restored\` before ${frame.op}` } };
    }
    try {
      if (frame.op === 'restored') return { ok: true, result: this.#restored(frame.args) };
      if (frame.op === 'put_file') this.putFiles.push(frame.args);
      if (frame.op === 'create_container' && id !== undefined) this.createArgs.set(id, frame.args);
      return { ok: true, result: this.#perform(frame.op, id) };
    } catch (err) {
      return { ok: false, error: { code: (err as { code?: string }).code ?? 'INTERNAL', message: (err as Error).message } };
    }
  }

  #restored(args: JsonObject): JsonObject {
    if (!this.restorePending) throw Object.assign(new Error('restored: no snapshot restore was seen'), { code: 'NOT_RESTORED' });
    this.restoredArgs.push(args);
    this.epoch = args.epoch as number;
    this.restorePending = false;
    return { epoch: this.epoch, hwrngBytes: 0, clockSet: true };
  }

  #perform(op: string, id: string | undefined): JsonObject {
    if (op === 'hello') return { version: 1, agent: 'fake-guest 1', epoch: this.epoch, restorePending: this.restorePending };
    if (op === 'shutdown') {
      this.shutdownRequested = true;
      return {};
    }
    if (op === 'configure_network') {
      this.networkConfigured += 1;
      return { interfaces: [] };
    }
    if (op === 'guest_info') return { kernelRelease: 'fake', uptimeSec: 1, memTotalKiB: 262144, memAvailableKiB: 131072, cpus: 1, agent: 'fake-guest 1', epoch: this.epoch };
    if (id === undefined) throw Object.assign(new Error(`${op}: no container id`), { code: 'INVALID_ARGUMENT' });
    if (op === 'create_container') {
      if (this.containers.has(id)) throw Object.assign(new Error(`container ${id} exists`), { code: 'EXISTS' });
      this.containers.set(id, 'created');
      const process = this.#nextProcess++;
      return { process, pid: 100 + process };
    }
    const state = this.containers.get(id);
    if (state === undefined) throw Object.assign(new Error(`no container ${id}`), { code: 'NOT_FOUND' });
    const illegal = () => Object.assign(new Error(`container "${id}" is ${state}`), { code: 'ILLEGAL_STATE' });
    switch (op) {
      case 'pause_container':
      case 'resume_container':
        if (state !== (op === 'pause_container' ? 'running' : 'paused')) throw illegal();
        this.containers.set(id, op === 'pause_container' ? 'paused' : 'running');
        return {};
      case 'put_file':
      case 'update_container':
        return {};
      case 'start_container':
        this.containers.set(id, 'running');
        return {};
      case 'container_status':
        return state === 'stopped' ? { state, exitCode: 0, signal: null } : { state };
      case 'signal_container':
      case 'wait_container':
        this.containers.set(id, 'stopped');
        return { exitCode: 0, signal: null };
      case 'delete_container':
        this.containers.delete(id);
        return {};
      default:
        throw Object.assign(new Error(`fake guest: op ${op} is not implemented`), { code: 'UNKNOWN_OP' });
    }
  }
}
