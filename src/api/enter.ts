// enterPod: a process in the guest itself (not in a container), with its stdio as Node streams.
import type { Readable, Writable } from 'node:stream';
import type { AgentClient, AgentProcess } from '../agent/index.js';
import { VcError } from '../errors.js';
import { openAgent, runningPod } from './pod-session.js';
import { storeFor, type CallOptions } from './context.js';

export interface ExecOptions extends CallOptions {
  env?: Record<string, string>;
  cwd?: string;
  tty?: boolean;
  rows?: number;
  cols?: number;
}

export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

export interface PodProcess {
  /** Guest pid of the process. */
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Empty for TTY processes: the terminal carries everything on stdout. */
  readonly stderr: Readable;
  wait(): Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals | number): Promise<void>;
  resize(rows: number, cols: number): Promise<void>;
}

export async function enterPod(id: string, argv: string[], options: ExecOptions = {}): Promise<PodProcess> {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((arg) => typeof arg !== 'string')) {
    throw new VcError('INVALID_CONFIG', `argv: expected a non-empty array of strings, got ${JSON.stringify(argv)}`);
  }
  const pod = await runningPod(storeFor(options), id, options);
  const agent = await openAgent(pod, options.signal);
  try {
    const proc = await agent.exec({
      argv,
      env: options.env ? Object.entries(options.env).map(([k, v]) => `${k}=${v}`) : undefined,
      cwd: options.cwd,
      tty: options.tty,
      rows: options.rows,
      cols: options.cols,
    });
    return wrapProcess(agent, proc);
  } catch (err) {
    agent.close();
    throw err;
  }
}

/** The process owns its agent connection and closes it once the exit status is in. */
export function wrapProcess(agent: AgentClient, proc: AgentProcess): PodProcess {
  const waited = proc.wait().finally(() => agent.close());
  return {
    pid: proc.pid,
    stdin: proc.stdin,
    stdout: proc.stdout,
    stderr: proc.stderr,
    wait: () => waited,
    kill: async (signal) => { await proc.kill(signal); },
    resize: async (rows, cols) => { await proc.resize(rows, cols); },
  };
}
