// Running a shell script chrooted into a root directory, as a user of that system would run it.
// Everything happens in fresh mount and PID namespaces (unshare --mount --pid --fork --kill-child):
// the /proc, /sys, /dev and /dev/pts mounts exist only there, so they vanish with the namespace
// even when the test is killed, and no host mount is ever left behind; when the script ends (or
// the unshare process is killed) every process in it dies with it, a daemonized QEMU included.
// /dev is a tmpfs with a few nodes, not the host's: no /dev/kvm, so `auto` picks QEMU with TCG
// (/dev/net/tun is there: pods' taps need it).
// Without `network`, the script also gets a network namespace of its own with only `lo`, up: it is
// offline, and whatever network it makes (a pod's CNI bridge vc0, veths, taps, routes) is made in
// that namespace and vanishes with it, never in the namespace of the test (the host's, when the
// test file runs with `// vc-test: host-network`).
// unshare runs under `setpriv --pdeathsig KILL`, so a test process that is killed takes the
// namespace and everything in it along (--kill-child passes the signal on to the namespace's init).
import { spawn, spawnSync } from 'node:child_process';

export interface RootRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface RootRunOptions {
  /** Share the test's network namespace (building the root); default false: a fresh one with only lo, up. */
  network?: boolean;
  /** Extra environment, on top of PATH, HOME, LANG and TERM (the host's is not passed on). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Each chunk of stdout and stderr as it arrives (the test prints what it does). */
  onOutput?: (chunk: string) => void;
}

// Runs on the host side inside the new namespaces: $1 the root, $2 the script, $3 "lo" when the
// network namespace is new (its lo is brought up with the host's ip), then NAME=VALUE...
const ENTER = `
set -eu
R=$1; CMD=$2; NET=$3; shift 3
if [ "$NET" = lo ]; then ip link set lo up; fi
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount -t tmpfs -o mode=0755,nosuid,size=16m vc-dev "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/net"
mknod -m 666 "$R/dev/net/tun" c 10 200
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm"
ln -s pts/ptmx "$R/dev/ptmx"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
exec chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  HOME=/root LANG=C.UTF-8 TERM=dumb "$@" /bin/sh -euc "$CMD"
`;

/** The command and arguments that run what follows them in fresh mount and PID namespaces. */
export const NAMESPACES_COMMAND = 'setpriv';
export const NAMESPACES: readonly string[] = ['--pdeathsig', 'KILL', 'unshare', '--mount', '--pid', '--fork', '--kill-child'];

/** Runs `script` with /bin/sh -eu inside `root`; resolves with its exit code and output. */
export function runInRoot(root: string, script: string, options: RootRunOptions = {}): Promise<RootRun> {
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const args = [...NAMESPACES, ...(options.network ? [] : ['--net']), 'sh', '-c', ENTER, 'vc-enter-root', root, script, options.network ? 'shared' : 'lo', ...env];
  return new Promise((resolve, reject) => {
    const child = spawn(NAMESPACES_COMMAND, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.stdout.on('data', (d: Buffer) => { stdout += d; options.onOutput?.(String(d)); });
    child.stderr.on('data', (d: Buffer) => { stderr += d; options.onOutput?.(String(d)); });
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** Why this host cannot run scripts in a root this way, or null. */
export function chrootProblem(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (chroot, mount and unshare)';
  for (const tool of ['setpriv', 'unshare', 'chroot', 'tar', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not in PATH`;
  }
  const probe = spawnSync(NAMESPACES_COMMAND, [...NAMESPACES, '--net', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.status !== 0) return `unshare --mount --pid --net fails here (or ip link set lo up in it): ${probe.stderr.trim() || probe.error?.message}`;
  return null;
}
