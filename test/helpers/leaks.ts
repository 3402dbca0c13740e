// What is left of a pod on the host, for the crash-only tests: after a delete, an empty list.
import { isIP } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { podCgroupParents } from '../../src/host/cgroup.js';

/** Processes whose command line names `marker`, as "process PID (argv0 …)". */
export function processesNaming(marker: string): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(marker)) found.push({ pid: Number(entry), argv: cmdline.split('\0').filter(Boolean) });
  }
  return found;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const full = join(dir, name);
    let kind = 'file';
    try {
      const st = statSync(full);
      if (st.isDirectory()) { out.push(...filesUnder(full)); kind = 'directory'; }
      else if (st.isSocket()) kind = 'socket';
    } catch {
      continue;
    }
    out.push(`${kind} ${full}`);
  }
  return out;
}

/** Unescapes the octal escapes (\040 etc.) of /proc/self/mountinfo paths. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Everything left of pod `podId` in `root`, one string per thing, naming it: processes whose
 * command line names the pod directory, the pod directory (and what is in it, sockets included),
 * a `.deleted-<id>-*` directory a removal left, cgroups under each hierarchy's `virtcontainers/`
 * whose name is the pod's (`<id up to 44 chars>-…`), and mounts under `root`. Empty: clean.
 */
export function leftovers(root: string, podId: string): string[] {
  const podDir = join(root, 'pods', podId);
  const found: string[] = [];
  for (const { pid, argv } of processesNaming(`${podDir}/`)) found.push(`process ${pid} (${argv.slice(0, 3).join(' ')} …)`);
  if (existsSync(podDir)) {
    found.push(`directory ${podDir}`);
    found.push(...filesUnder(podDir));
  }
  const podsDir = join(root, 'pods');
  if (existsSync(podsDir)) {
    for (const name of readdirSync(podsDir)) {
      if (name.startsWith(`.deleted-${podId}-`)) found.push(`directory ${join(podsDir, name)} (a removal left it)`);
    }
  }
  const cgroupPrefix = `${podId.slice(0, 44)}-`;
  for (const parent of podCgroupParents()) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue; // no pod group was ever made in this hierarchy
    }
    for (const name of names) {
      if (name.startsWith(cgroupPrefix) && statSync(join(parent, name)).isDirectory()) found.push(`cgroup ${join(parent, name)}`);
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint && unescapeMountPath(mountPoint).startsWith(`${root}/`)) found.push(`mount ${unescapeMountPath(mountPoint)}`);
  }
  // The default network's address leases (host-local: a file per address naming the pod).
  const leases = join(root, 'network/ipam/virtcontainers');
  for (const name of existsSync(leases) ? readdirSync(leases) : []) {
    if (isIP(name) === 0) continue;
    const owner = readFileSync(join(leases, name), 'utf8').split(/\r?\n/)[0]?.trim();
    if (owner === podId) found.push(`IPAM lease ${name} (${join(leases, name)})`);
  }
  return found;
}
