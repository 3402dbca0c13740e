// Child processes for the host side of pod networking: the CNI plugins, `iptables` (the loopback
// forwarder) and util-linux's `nsenter` (the VMM in the pod's namespace), optionally inside a network namespace given by
// path (`nsenter --net=PATH`, which takes any nsfs file: a pod's `<podDir>/netns`, a caller's
// `/proc/PID/ns/net`, `/run/netns/NAME`).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { VcError, abortError } from '../errors.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Run inside this network namespace (`nsenter --net=PATH --`). */
  netns?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  /** SIGKILL the child after this long (default 30 s); the result then has `signal` set. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The argv that runs `argv` inside the network namespace `netns`. */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns === undefined ? [...argv] : ['nsenter', `--net=${netns}`, '--', ...argv];
}

/** Where the host programs of pod networking come from. */
const PROGRAM_PACKAGES: Readonly<Record<string, string>> = {
  nsenter: 'util-linux',
  iptables: 'iptables',
};

/** What a user without a network of pods can do instead (NETWORK_UNAVAILABLE messages end with it). */
export const NETWORK_NONE_HINT = 'or use network none (--network none)';

/**
 * Null when `program` (a bare name) is an executable in `path` (a PATH value; unset: execvp's
 * default), else the NETWORK_UNAVAILABLE error naming it and its package. Checked before each run
 * because under `nsenter` a missing program would only be nsenter's exit 127 (NETWORK_FAILED).
 */
export function missingProgram(program: string, path: string | undefined): VcError | null {
  if (program.includes('/')) return null;
  const dirs = (path ?? '/usr/bin:/bin').split(delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return null;
    } catch {
      // next directory
    }
  }
  const pkg = PROGRAM_PACKAGES[program];
  return new VcError('NETWORK_UNAVAILABLE',
    `network: ${program} not found (looked in PATH); ${pkg ? `install ${pkg}` : 'install it'}, ${NETWORK_NONE_HINT}`);
}

/** Runs `argv` to its end; rejects only when it cannot be started (NETWORK_UNAVAILABLE) or on abort. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const full = inNetns(options.netns, argv);
  if (options.signal?.aborted) return Promise.reject(abortError(options.signal, full.join(' ')));
  const env = options.env ?? process.env;
  for (const program of new Set([full[0]!, argv[0]!])) {
    const missing = missingProgram(program, env.PATH);
    if (missing) return Promise.reject(missing);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.stdin.on('error', () => {}); // a child that exits without reading its stdin
    child.stdin.end(options.stdin ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    const onAbort = (): void => { child.kill('SIGKILL'); };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      done();
      reject(new VcError(error.code === 'ENOENT' ? 'NETWORK_UNAVAILABLE' : 'NETWORK_FAILED',
        `cannot run ${full[0]}${error.code === 'ENOENT' ? ` (not installed? ${PROGRAM_PACKAGES[full[0]!] ?? 'Debian: iproute2, util-linux, containernetworking-plugins'}; ${NETWORK_NONE_HINT})` : ''}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      done();
      if (options.signal?.aborted) { reject(abortError(options.signal, full.join(' '))); return; }
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

export function describe(argv: readonly string[], netns: string | undefined): string {
  return `\`${argv.join(' ')}\`${netns === undefined ? '' : ` in netns ${netns}`}`;
}

export function exitText(result: RunResult): string {
  return result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
}
