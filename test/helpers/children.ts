// The children of a process, from /proc (a launcher's spares, a monitor's VMM).
import { readdirSync, readFileSync } from 'node:fs';

/** The pids whose parent is `pid` now, ascending. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: the fields after the last ')'.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // ended while we looked
    }
  }
  return out.sort((a, b) => a - b);
}
