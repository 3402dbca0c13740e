/**
 * The shim's view of a task's processes (the init, execId "", and its execs): state, stdio, pid and
 * exit, as the Task API reports them. Exit statuses follow runc's shim: a signal-killed process
 * exits 128 + the signal's number; a process whose VM died exits 255.
 */
import { constants } from 'node:os';
import type { ExitStatus, PodProcess } from '../api/enter.js';
import { TaskStatus } from './proto/task.js';
import type { OpenStdio, StdioPaths } from './stdio.js';
import type { OciProcess } from '../oci/spec.js';

export const VM_GONE_EXIT_STATUS = 255;

export interface ProcessExit {
  status: number;
  at: Date;
}

export class ShimProcess {
  state: 'created' | 'running' | 'stopped' = 'created';
  pid = 0;
  proc?: PodProcess;
  io?: OpenStdio;
  exit?: ProcessExit;
  readonly #exited: Promise<ProcessExit>;
  #settle!: (exit: ProcessExit) => void;

  constructor(readonly execId: string, readonly stdio: StdioPaths, readonly spec?: OciProcess) {
    this.#exited = new Promise((resolve) => { this.#settle = resolve; });
  }

  /** Resolves with the exit once the process has gone (or was never started and is deleted). */
  get exited(): Promise<ProcessExit> {
    return this.#exited;
  }

  /** Records the exit once; later calls keep the first. true if this call recorded it. */
  finish(status: number, at = new Date()): boolean {
    if (this.exit) return false;
    this.exit = { status, at };
    this.state = 'stopped';
    this.io?.close();
    this.#settle(this.exit);
    return true;
  }

  get taskStatus(): TaskStatus {
    return this.state === 'created' ? TaskStatus.Created : this.state === 'running' ? TaskStatus.Running : TaskStatus.Stopped;
  }
}

export function exitStatusOf(exit: ExitStatus): number {
  if (exit.exitCode !== null) return exit.exitCode;
  const signals = constants.signals as Record<string, number>;
  const number = exit.signal ? signals[exit.signal] : undefined;
  return number !== undefined ? 128 + number : VM_GONE_EXIT_STATUS;
}

export function signalName(signal: number): NodeJS.Signals | number {
  const entry = Object.entries(constants.signals).find(([, n]) => n === signal);
  return entry ? (entry[0] as NodeJS.Signals) : signal;
}
