// The memory of a process and everything under it, from /proc: a pod's VMM is a tree (vc-vmm's
// monitor parent and the jailed VMM below it; QEMU alone), and its cost to the host is the sum.
import { readdirSync, readFileSync } from 'node:fs';

/** The pid and every descendant alive now (parents from /proc/PID/stat, read once). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // ended while we looked
    }
    // The command name is in parentheses and may hold spaces or ')': the fields after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** `Pss:` of /proc/PID/smaps_rollup in KiB, or null when the process is gone or the line missing. */
export function pssKiB(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return null;
  }
  const m = /^Pss:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** The PSS of a process tree in KiB; throws when the root itself cannot be read. */
export function treePssKiB(root: number): number {
  const own = pssKiB(root);
  if (own === null) throw new Error(`process ${root}: no /proc/${root}/smaps_rollup (it has ended?)`);
  return processTree(root).slice(1).reduce((sum, pid) => sum + (pssKiB(pid) ?? 0), own);
}
