// Ends a pod's host side whatever its record says: every VMM process of the pod, found by its
// recorded identity, the pid file, the cgroup, or a command line naming its marker (a file in the
// pod directory only the VMM names); then the cgroup and the files. Used where a step died
// part-way, by forced deletes and by gc.
import { readFile, rm, rmdir, stat } from 'node:fs/promises';
import { VcError } from '../errors.js';
import type { PodResources } from '../model/records.js';
import { removePodCgroup } from './cgroup.js';
import { isProcessFor, isSameProcess, processArgv, processesNaming, signalProcess, waitForExit } from './process.js';

/** A recorded process; without a start time it is checked by its command line alone (old records). */
export interface KnownProcess {
  pid: number;
  startTime?: number;
}

/** One thing reap found, as "what it was": e.g. "process 123 (qemu-system-x86_64)". */
export type Reaped = string;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function cgroupMembers(dirs: readonly string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const dir of dirs) {
    const text = await readFile(`${dir}/cgroup.procs`, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.push(Number(line));
  }
  return pids;
}

/** The pod's live processes, each with where it was found. */
export async function podProcesses(resources: PodResources, known: readonly KnownProcess[] = []): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  for (const { pid, startTime } of known) {
    if (await isSameProcess(pid, startTime, resources.marker)) found.set(pid, 'recorded');
  }
  if (resources.pidFile) {
    const pid = Number((await readFile(resources.pidFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && !found.has(pid) && (await isProcessFor(pid, resources.marker))) found.set(pid, 'pid file');
  }
  for (const pid of await cgroupMembers(resources.cgroup ?? [])) if (!found.has(pid)) found.set(pid, 'cgroup');
  for (const pid of await processesNaming(resources.marker)) if (!found.has(pid)) found.set(pid, 'command line');
  return found;
}

/**
 * Kills the pod's processes (SIGKILL: whatever they were doing is being undone), removes its
 * cgroup and files, and says what it found (dryRun: only says). Throws, with nothing claimed done, when a process
 * outlives SIGKILL.
 */
export async function reapPod(resources: PodResources, known: readonly KnownProcess[] = [], options: { dryRun?: boolean } = {}): Promise<Reaped[]> {
  const reaped: Reaped[] = [];
  const processes = await podProcesses(resources, known);
  for (const [pid, how] of processes) {
    const name = (await processArgv(pid))?.[0]?.split('/').pop() ?? '?';
    if (!options.dryRun) signalProcess(pid, 'SIGKILL');
    reaped.push(`process ${pid} (${name}, found by ${how})`);
  }
  if (options.dryRun) {
    for (const dir of resources.cgroup ?? []) if (await exists(dir)) reaped.push(`cgroup ${dir}`);
    for (const file of resources.files) if (await exists(file)) reaped.push(`file ${file}`);
    for (const dir of resources.dirs ?? []) if (await exists(dir)) reaped.push(`directory ${dir}`);
    return reaped;
  }
  const survivors: number[] = [];
  for (const pid of processes.keys()) if (!(await waitForExit(pid, 5000))) survivors.push(pid);
  if (survivors.length > 0) {
    throw new VcError('HYPERVISOR_FAILED', `processes ${survivors.join(', ')} of ${resources.marker} did not exit after SIGKILL`);
  }
  const cgroups = [];
  for (const dir of resources.cgroup ?? []) if (await exists(dir)) cgroups.push(dir);
  if (cgroups.length > 0) {
    await removePodCgroup(cgroups);
    reaped.push(...cgroups.map((dir) => `cgroup ${dir}`));
  }
  for (const file of resources.files) {
    if (!(await exists(file))) continue;
    await rm(file, { force: true });
    reaped.push(`file ${file}`);
  }
  for (const dir of resources.dirs ?? []) if (await removeEmptyDir(dir)) reaped.push(`directory ${dir}`);
  return reaped;
}

/**
 * Removes a directory that must be empty (PodResources.dirs); false when there was none. One
 * that is not empty or is a mount point throws, naming it: deleting through it could reach host
 * files mounted there.
 */
export async function removeEmptyDir(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    throw new VcError('HYPERVISOR_FAILED', `cannot remove ${dir}: ${(err as Error).message} (it should be an empty directory)`, { cause: err });
  }
}
