// Starting QEMU detached without its -daemonize: in a session of its own (setsid), stdin closed,
// stdout and stderr to a log file in the pod directory (a pipe would break when the starting
// process ends). QEMU is up once its monitor answers a command, which it does only from its main
// loop, after the machine is built — the moment -daemonize's parent used to exit at. Not using
// -daemonize is what lets QEMU's sandbox deny spawning (command.ts).
import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { throwIfAborted, VcError } from '../../errors.js';
import { QmpClient } from './qmp.js';

export interface QemuExit { code: number | null; signal: NodeJS.Signals | null }

export interface QemuLaunch {
  pid: number;
  /** Settles when the QEMU this process started ends (only while this process lives). */
  exited: Promise<QemuExit>;
}

/** Spawns `command` detached with its output in `logPath` (0600); resolves once it has a pid. */
export async function launchDetached(command: string, args: string[], logPath: string): Promise<QemuLaunch> {
  const log = await open(logPath, 'w', 0o600);
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
    const exited = new Promise<QemuExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new VcError('HYPERVISOR_FAILED', `cannot start ${command}: ${err.message}`, { cause: err })));
    });
    child.unref();
    return { pid: child.pid!, exited };
  } finally {
    await log.close();
  }
}

/** How a QEMU ended, in a pod's words: "killed by SIGSYS", "exited with code 1". */
export function describeExit(exit: QemuExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Waits until QEMU's monitor on `qmpSocket` answers `query-status`. Throws HYPERVISOR_FAILED with
 * QEMU's own last words (its log) when it ends first, and on timeout or abort (the caller kills it).
 */
export async function waitUntilServing(qmpSocket: string, launch: QemuLaunch, logPath: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  let ended: QemuExit | undefined;
  void launch.exited.then((exit) => { ended = exit; });
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (ended) {
      const said = logTail(await readFile(logPath, 'utf8').catch(() => ''));
      throw new VcError('HYPERVISOR_FAILED', `qemu ${describeExit(ended)} before it served its monitor${said ? `: ${said}` : ''}`);
    }
    throwIfAborted(options.signal, 'the start (while qemu set up the VM)');
    if (Date.now() >= deadline) throw new VcError('HYPERVISOR_FAILED', `qemu did not serve its monitor ${qmpSocket} within ${options.timeoutMs} ms`);
    const qmp = await QmpClient.connect(qmpSocket, Math.min(2000, Math.max(1, deadline - Date.now()))).catch(() => null);
    if (qmp) {
      try {
        await qmp.execute('query-status');
        return;
      } catch {
        // closed under us (QEMU ending): the loop reports it
      } finally {
        qmp.close();
      }
    }
    await sleep(20);
  }
}

/** What QEMU last said, for an error: its last lines, at most LOG_TAIL_BYTES (the whole log is in qemu.log). */
const LOG_TAIL_LINES = 20;
const LOG_TAIL_BYTES = 4096;
export function logTail(text: string): string {
  const lines = text.trim().split('\n');
  let tail = lines.slice(-LOG_TAIL_LINES).join('\n');
  if (tail.length > LOG_TAIL_BYTES) tail = tail.slice(-LOG_TAIL_BYTES);
  return tail.length < text.trim().length ? `…${tail}` : tail;
}

/**
 * Where the starting process writes how its QEMU ended, when nobody here asked it to: read back by
 * exitDetail as the pod's stop reason. Synchronous, so nothing of this process runs in between.
 */
export function recordUnexpectedExit(exitFile: string, pid: number, exit: QemuExit): void {
  try {
    writeFileSync(exitFile, `${JSON.stringify({ pid, ...exit })}\n`, { mode: 0o600, flag: 'w' });
  } catch {
    // the pod directory is gone: nobody is left to ask
  }
}

/** The recorded end of the QEMU with this pid, or null. */
export async function recordedExit(exitFile: string, pid: number): Promise<QemuExit | null> {
  try {
    const record = JSON.parse(await readFile(exitFile, 'utf8')) as { pid?: unknown; code?: unknown; signal?: unknown };
    if (record.pid !== pid) return null;
    return { code: typeof record.code === 'number' ? record.code : null, signal: typeof record.signal === 'string' ? (record.signal as NodeJS.Signals) : null };
  } catch {
    return null;
  }
}
