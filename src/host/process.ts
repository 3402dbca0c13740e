// Facts about host processes by pid, for VMM processes that outlive the Node process that made them.
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The argv of a live process, or undefined when it is gone (or a zombie with no cmdline). */
export async function processArgv(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!raw) return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and its argv mentions `marker` — guards against a reused pid. */
export async function isProcessFor(pid: number, marker: string): Promise<boolean> {
  const argv = await processArgv(pid);
  return argv !== undefined && argv.some((arg) => arg.includes(marker));
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid) || (await processArgv(pid)) === undefined) return true;
    await sleep(20);
  }
  return false;
}

export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * When `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat), or undefined when
 * it is gone. With the pid it names one process for good: a later process reusing the pid has
 * another start time.
 */
export async function processStartTime(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isSafeInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** The identity of this process (see processStartTime). */
export async function selfIdentity(): Promise<{ pid: number; startTime: number }> {
  return { pid: process.pid, startTime: (await processStartTime(process.pid)) ?? 0 };
}

/** True when the process `pid` is alive, is still the one that started at `startTime` (when given), and names `marker`. */
export async function isSameProcess(pid: number, startTime: number | undefined, marker: string): Promise<boolean> {
  if (startTime !== undefined && (await processStartTime(pid)) !== startTime) return false;
  return isProcessFor(pid, marker);
}

/** Every live process (not this one) with an argument containing `marker`, ascending by pid. */
export async function processesNaming(marker: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const argv = await processArgv(pid);
    if (argv?.some((arg) => arg.includes(marker))) found.push(pid);
  }
  return found.sort((a, b) => a - b);
}
