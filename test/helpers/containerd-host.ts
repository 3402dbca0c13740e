// What a private containerd (test/helpers/containerd.ts) can leave on the host, read from /proc and
// the cgroup hierarchies: its processes, its containers' cgroups, mounts. Used by stop() to find
// what to kill and by leftovers() to prove nothing is left.
import { readdirSync, readFileSync, readlinkSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface HostProcess {
  pid: number;
  argv: string[];
  /** `mnt:[inode]` of its mount namespace, or '' when unreadable. */
  mountNamespace: string;
}

/** Every live process except zombies (a zombie holds no resource, only a pid its parent reaps). */
export function liveProcesses(): HostProcess[] {
  const out: HostProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let mountNamespace = '';
      try {
        mountNamespace = readlinkSync(`/proc/${entry}/ns/mnt`);
      } catch {
        /* a kernel thread, or gone meanwhile */
      }
      out.push({ pid: Number(entry), argv, mountNamespace });
    } catch {
      continue; // gone meanwhile
    }
  }
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Mount points of every cgroup hierarchy (v1 controllers, the v2 unified one). */
export function cgroupHierarchies(): string[] {
  const roots: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const dash = line.split(' - ');
    const fstype = dash[1]?.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') roots.push(unescapeMountPath(line.split(' ')[4]!));
  }
  return roots;
}

/** Directories under `dir` (itself included), deepest first: the order rmdir needs. */
export function cgroupTree(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    const full = join(dir, name);
    try {
      if (statSync(full).isDirectory()) out.push(...cgroupTree(full));
    } catch {
      /* removed meanwhile */
    }
  }
  out.push(dir);
  return out;
}

/** The pids in the cgroup directories `dirs`. */
export function pidsIn(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const dir of dirs) {
    try {
      for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
    } catch {
      /* gone */
    }
  }
  return [...pids];
}

/** rmdir each (deepest first); a cgroup still holding a process stays, and so do its parents. */
export function removeCgroups(dirs: string[]): void {
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      /* busy or gone: leftovers() reports the busy ones */
    }
  }
}

/** Unescapes the octal escapes (\040 etc.) of /proc/self/mountinfo paths. */
export function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points in this process's mount namespace at or under `path`. */
export function mountsAt(path: string): string[] {
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mountPoint = unescapeMountPath(field);
    if (mountPoint === path || mountPoint.startsWith(`${path}/`)) found.push(mountPoint);
  }
  return found;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** SIGKILL to each pid; waits (bounded) until they are gone. Returns those still alive. */
export async function killAndWait(pids: number[], timeoutMs = 3000): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && pids.some(pidAlive)) await sleep(20);
  return pids.filter(pidAlive);
}
