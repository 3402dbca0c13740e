// The process side of an agent connection: stream, exit and stdin-ack frames go to the
// AgentProcess they name. Frames for a process whose exec response has not arrived yet are held
// (bounded) and replayed; frames for processes nobody holds any more are dropped.
import { protocolError } from './errors.js';
import { AgentProcess, type ProcessLink } from './process.js';
import { FrameType, frameTypeName, type AgentResponse, type DataFrame, type ExitFrame, type JsonObject, type StdinAckFrame } from './protocol.js';
import { isProcessId, resultError } from './requests.js';
import type { AgentError } from './errors.js';

/**
 * Output the agent may send for a process before the exec RESPONSE that names it (the doc does not
 * forbid that order). More than this while an exec is outstanding is treated as a protocol error.
 */
const EARLY_FRAME_LIMIT = 4 * 1024 * 1024;

export type ProcessFrame = DataFrame | ExitFrame | StdinAckFrame;

export class ProcessRouter {
  readonly #processes = new Map<number, AgentProcess>();
  /** Processes nobody holds (exec/attach abandoned): their frames are dropped. */
  readonly #discarded = new Set<number>();
  readonly #early = new Map<number, ProcessFrame[]>();
  #earlyBytes = 0;
  #execsOutstanding = 0;

  constructor(private readonly link: ProcessLink) {}

  has(id: number): boolean {
    return this.#processes.has(id);
  }

  /** A process attached to this connection; frames for its id now reach it. */
  attach(id: number): AgentProcess {
    const proc = new AgentProcess(this.link, { id, pid: 0, tty: false, strict: false });
    this.#processes.set(id, proc);
    this.#discarded.delete(id);
    return proc;
  }

  /** Stops routing to `proc`; with `dropLater`, later frames for its id are dropped, not errors. */
  forget(proc: AgentProcess, dropLater = false): void {
    if (this.#processes.get(proc.id) !== proc) return;
    this.#processes.delete(proc.id);
    if (dropLater) this.#discarded.add(proc.id);
  }

  execStarted(): void {
    this.#execsOutstanding += 1;
  }

  execDone(): void {
    this.#execsOutstanding -= 1;
    if (this.#execsOutstanding === 0) this.#dropEarly();
  }

  /** The process an exec-like result names (throws a protocol error for a malformed result). */
  acceptExec(result: JsonObject, tty: boolean): AgentProcess {
    const id = result.process;
    if (!isProcessId(id)) throw resultError('exec', 'process', 'a non-zero u32', id);
    if (this.#processes.has(id)) throw resultError('exec', 'process', 'an id not in use', id);
    const pid = result.pid;
    if (!Number.isInteger(pid) || (pid as number) <= 0) {
      this.#discarded.add(id);
      throw resultError('exec', 'pid', 'a positive integer', pid);
    }
    const proc = new AgentProcess(this.link, { id, pid: pid as number, tty, strict: true });
    this.#processes.set(id, proc);
    return proc;
  }

  /**
   * The process a `forward` result names: a TCP connection with one output stream and no stderr
   * (as for a TTY, no STDERR frames; EXIT follows the end of its stdout).
   */
  acceptForward(result: JsonObject): AgentProcess {
    const id = result.process;
    if (!isProcessId(id)) throw resultError('forward', 'process', 'a non-zero u32', id);
    if (this.#processes.has(id)) throw resultError('forward', 'process', 'an id not in use', id);
    const proc = new AgentProcess(this.link, { id, pid: 0, tty: true, strict: true });
    this.#processes.set(id, proc);
    return proc;
  }

  /** The exec was given up and answered late: its process is unwanted. Returns its id to kill. */
  discardLate(response: AgentResponse): number | undefined {
    if (!response.ok || !isProcessId(response.result.process)) return undefined;
    const id = response.result.process;
    this.#early.delete(id);
    this.#discarded.add(id);
    return id;
  }

  route(frame: ProcessFrame): void {
    const proc = this.#processes.get(frame.id);
    if (proc) {
      proc.handleFrame(frame); // throws on a violation: the process then fails with the connection
      if (frame.type === FrameType.EXIT) this.#processes.delete(frame.id);
      return;
    }
    if (this.#discarded.has(frame.id)) {
      if (frame.type === FrameType.EXIT) this.#discarded.delete(frame.id);
      return;
    }
    if (this.#execsOutstanding > 0) {
      // Possibly output of a process whose exec RESPONSE is still on its way.
      const size = frame.type === FrameType.EXIT || frame.type === FrameType.STDIN_ACK ? 0 : frame.data.length;
      this.#earlyBytes += size + 16;
      if (this.#earlyBytes > EARLY_FRAME_LIMIT) {
        throw protocolError(`more than ${EARLY_FRAME_LIMIT} bytes of frames for process ids no exec has returned (last: ${frame.id})`);
      }
      const list = this.#early.get(frame.id) ?? [];
      list.push(frame);
      this.#early.set(frame.id, list);
      return;
    }
    // A late acknowledgement for a process that has exited is harmless.
    if (frame.type === FrameType.STDIN_ACK) return;
    throw protocolError(`${frameTypeName(frame.type)} frame for process ${frame.id}, which is not attached to this connection`);
  }

  replayEarly(id: number): void {
    const frames = this.#early.get(id);
    if (!frames) return;
    this.#early.delete(id);
    for (const frame of frames) this.route(frame);
  }

  /** The connection is gone: no exec is outstanding any more. */
  stopWaitingForExecs(): void {
    this.#dropEarly();
    this.#execsOutstanding = 0;
  }

  /** Every process still routed here learns the connection is gone. */
  closeAll(reason: AgentError): void {
    const processes = [...this.#processes.values()];
    this.#processes.clear();
    this.#discarded.clear();
    for (const proc of processes) proc.handleClosed(reason);
  }

  #dropEarly(): void {
    this.#early.clear();
    this.#earlyBytes = 0;
  }
}
