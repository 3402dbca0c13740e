// What the private engine rigs (test/helpers/containerd.ts, test/helpers/podman.ts) share: where
// their directories go, and running an engine's client to completion, optionally under a
// pseudo-terminal, with its output collected.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Where rigs keep their directories: /tmp, unless /tmp is itself an overlay (the nested harness's
 * L1), which overlayfs refuses as an upper directory for containerd's snapshots and podman's
 * overlay storage; /run is a tmpfs there.
 */
export const RIG_BASE = (() => {
  try {
    const tmp = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[1] === '/tmp').at(-1);
    return tmp?.[2] === 'overlay' ? '/run' : '/tmp';
  } catch {
    return '/tmp';
  }
})();

export interface RunOptions {
  /** Written to the command's stdin, which is then closed; without it stdin is empty. */
  input?: string | Buffer;
  /** The call is killed and rejected after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * Run under a pseudo-terminal (util-linux `script`), for `ctr run -t` or `podman run -it`.
   * Output is what the terminal got: lines end in CR LF (or CR CR LF where the container's
   * terminal adds one and ours another).
   */
  tty?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `argv` wrapped so that it runs with a pseudo-terminal as its stdin, stdout and stderr. */
export function underTty(argv: string[]): string[] {
  return ['script', '--quiet', '--return', '--command', argv.map(shellQuote).join(' '), '/dev/null'];
}

/** Runs `argv` to its end; `what` names it in the timeout's error. */
export function runCollect(argv: string[], opts: RunOptions, what: string, env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, SHELL: '/bin/sh' } });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    child.stdin!.on('error', () => { /* it exited without reading: its result says why */ });
    // Under a pty, `script` answers its stdin's EOF by typing an EOF character into the terminal,
    // which the task would read (as a NUL once the engine made the terminal raw): keep stdin open.
    if (opts.tty) child.stdin!.write(opts.input ?? '');
    else child.stdin!.end(opts.input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} timed out after ${timeoutMs} ms; stdout: ${JSON.stringify(stdout.slice(-500))}; stderr: ${JSON.stringify(stderr.slice(-500))}`));
    }, timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(new Error(`${what}: ${err.message}`)); });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      child.stdin!.destroy();
      resolve({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), stdout, stderr });
    });
  });
}
