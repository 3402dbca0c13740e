// Helpers for tests of pod networks. They run only in a network namespace the test run made
// (scripts/test.js runs such files under `unshare --net`), never in the host's.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** Why this process must not make networks here, or null: it is in a namespace of its own. */
export function hostNamespaceProblem(): string | null {
  // The parent (the test runner, or the shell that started this file) is in the namespace this
  // file must not touch. (PID 1's namespace cannot be read from inside some containers.)
  const self = readlinkSync('/proc/self/ns/net');
  const parent = readlinkSync(`/proc/${process.ppid}/ns/net`);
  return self === parent ? `this process is in its parent's network namespace (${self}); run the file through scripts/test.js, which gives it one of its own` : null;
}

/** `ip` in the namespace named by the nsfs file `netns` (or this one). */
export function ip(args: string[], netns?: string): string {
  const argv = netns ? ['nsenter', `--net=${netns}`, '--', 'ip', ...args] : ['ip', ...args];
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
}

/** Link names of a namespace. */
export function links(netns?: string): string[] {
  return (JSON.parse(ip(['-j', 'link', 'show'], netns)) as { ifname: string }[]).map((l) => l.ifname);
}

/** tc filters and qdiscs (ingress) on `dev` in `netns`, as text; empty when there are none. */
export function tcState(dev: string, netns?: string): string {
  const tc = (args: string[]) => {
    const argv = netns ? ['nsenter', `--net=${netns}`, '--', 'tc', ...args] : ['tc', ...args];
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim();
  };
  const qdiscs = tc(['qdisc', 'show', 'dev', dev]).split('\n').filter((l) => l.includes('ingress'));
  return [...qdiscs, tc(['filter', 'show', 'dev', dev, 'ingress'])].filter(Boolean).join('\n');
}

/** Files of addresses host-local still leases in `root`'s default network. */
export function ipamLeaseFiles(root: string): string[] {
  const dir = join(root, 'network/ipam/virtcontainers');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => isIP(name) !== 0 && statSync(join(dir, name)).isFile());
}

/** A namespace of the test's own, kept by a bind mount on `path` (removed with removeNetnsFile). */
export function makeNetnsFile(path: string): string {
  execFileSync('sh', ['-c', `: > "$0" && unshare --net="$0" true && nsenter --net="$0" ip link set lo up`, path]);
  return path;
}

export function removeNetnsFile(path: string): void {
  try {
    execFileSync('umount', [path], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  execFileSync('rm', ['-f', path]);
}
