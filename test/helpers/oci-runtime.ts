// virtc-runtime driven as an engine drives runc, for the integration tests that run the CLI
// directly (oci-runtime-cli, oci-runtime-crash): the holder to use, bundles on a busybox rootfs,
// one-shot commands, and conmon's part — a child subreaper that runs `create` with FIFOs as the
// container's stdio and a pid file, then waits for the holder and reports how it ended.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { busyboxRootfs } from './images.js';
import { testHypervisor } from './hypervisor.js';

export const RUNTIME_BIN = join(process.cwd(), 'bin', 'virtc-runtime');
const realHolder = join(process.cwd(), 'build', 'Release', 'vc-holder');

/**
 * conmon's part: subreaper, `create` with the given stdio, then wait for the pid-file's process.
 * With a console socket path (else "-"): listen there as conmon does, take the terminal's master
 * the holder sends (SCM_RIGHTS) and report what the container wrote on its terminal.
 * A create killed by a signal reports {"create": -SIGNAL}.
 */
const MONITOR = `
import ctypes, json, os, socket, sys, threading
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pidfile, console, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
listener = None
if console != "-":
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(console)
    listener.listen(1)
child = os.fork()
if child == 0:
    os.dup2(3, 1); os.dup2(4, 2); os.closerange(3, 64)
    os.execv(argv[0], argv)
os.close(3); os.close(4)
_, st = os.waitpid(child, 0)
report = os.fdopen(5, 'w')
print(json.dumps({"create": os.waitstatus_to_exitcode(st)}), file=report, flush=True)
if os.waitstatus_to_exitcode(st) != 0: sys.exit(0)
tty = []
reader = None
if listener is not None:
    conn, _ = listener.accept()
    _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    master = fds[0]
    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data: return
            tty.append(data)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
holder = int(open(pidfile).read())
print(json.dumps({"holder": holder}), file=report, flush=True)
while True:
    pid, st = os.waitpid(-1, 0)
    if pid == holder: break
if reader is not None:
    reader.join(5)
    print(json.dumps({"tty": b"".join(tty).decode(errors="replace")}), file=report, flush=True)
print(json.dumps({"signal": os.WTERMSIG(st)} if os.WIFSIGNALED(st) else {"exit": os.WEXITSTATUS(st)}), file=report, flush=True)
`;

export interface Monitored {
  child: ChildProcess;
  reports: Array<Record<string, number | string>>;
  stdout: () => string;
  stderr: () => string;
}

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** FIFOs as conmon's pipes: the reader opened first (without blocking), the writer handed to create. */
function fifo(path: string): { write: number; read: () => string } {
  execFileSync('mkfifo', [path]);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const write = openSync(path, constants.O_WRONLY);
  let text = '';
  const reader = new Socket({ fd: readFd, readable: true, writable: false });
  reader.on('data', (d: Buffer) => { text += d.toString(); });
  reader.on('error', () => {});
  return { write, read: () => text };
}

/** One test file's runtime: its root under `dir`, the holder it uses, its bundles and commands. */
export class RuntimeRig {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
  /** The native holder's path, or '' when the Node stand-in is used. */
  readonly nativeHolder: string;
  readonly rootfs: string;
  #monitors = 0;

  constructor(readonly dir: string) {
    this.root = join(dir, 'rt');
    this.rootfs = busyboxRootfs(join(dir, 'rootfs'));
    this.env = { ...process.env, VIRTC_RUNTIME_IDLE_MS: '1500' };
    // The native holder: built here, or named by VIRTC_RUNTIME_HOLDER (e.g. one built from its branch).
    this.nativeHolder = process.env.VIRTC_RUNTIME_HOLDER || (existsSync(realHolder) ? realHolder : '');
    if (this.nativeHolder) {
      this.env.VIRTC_RUNTIME_HOLDER = this.nativeHolder;
      console.log(`# holder: ${this.nativeHolder}`);
    } else {
      // Its Node stand-in speaks the same protocol.
      const wrapper = join(dir, 'fake-holder');
      writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${join(process.cwd(), 'dist/test/helpers/fake-holder.js')} "$@"\n`);
      chmodSync(wrapper, 0o755);
      this.env.VIRTC_RUNTIME_HOLDER = wrapper;
      console.log(`# holder: vc-holder is not built (${realHolder} missing, VIRTC_RUNTIME_HOLDER unset): using the Node stand-in test/helpers/fake-holder.ts; exit statuses below come from it, not from vc-holder`);
    }
  }

  /** `create` of `id` under the monitor; `extraEnv` is added to the create's (and a daemon it starts) environment. */
  monitorCreate(id: string, bundle: string, opts: { consoleSocket?: string; extraEnv?: NodeJS.ProcessEnv } = {}): Monitored {
    const tag = `${id}.${++this.#monitors}`;
    const out = fifo(join(this.dir, `${tag}.out`));
    const err = fifo(join(this.dir, `${tag}.err`));
    const pidFile = join(this.dir, `${tag}.pid`);
    const { consoleSocket } = opts;
    const create = ['create', '--bundle', bundle, '--pid-file', pidFile, '--no-pivot', ...(consoleSocket ? ['--console-socket', consoleSocket] : []), id];
    const child = spawn('python3', ['-c', MONITOR, pidFile, consoleSocket || '-', RUNTIME_BIN, '--root', this.root, '--log', join(this.dir, `${id}.oci-log`), '--log-format=json', ...create], {
      stdio: ['ignore', 'ignore', 'inherit', out.write, err.write, 'pipe'], env: { ...this.env, ...opts.extraEnv },
    });
    // The writers are the container's now (through the holder): ours close, so EOF means it is done.
    closeSync(out.write);
    closeSync(err.write);
    const reports: Array<Record<string, number | string>> = [];
    let partial = '';
    (child.stdio as unknown as NodeJS.ReadableStream[])[5]!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) reports.push(JSON.parse(line) as Record<string, number | string>);
    });
    return { child, reports, stdout: out.read, stderr: err.read };
  }

  /** A bundle on the busybox rootfs, with new pid/mount/network/ipc/uts namespaces (network without a path: docker's way). */
  bundleFor(name: string, args: string[], extra: Record<string, unknown> = {}): string {
    const dir = join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      ociVersion: '1.0.2',
      process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin:/usr/bin:/sbin'], cwd: '/' },
      root: { path: this.rootfs },
      hostname: name,
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }] },
      annotations: { 'io.virtcontainers.pod.hypervisor': testHypervisor, 'org.example.note': name },
      ...extra,
    }));
    return dir;
  }

  /** One command; `quiet` gives it no pipes (a detached holder keeps what it inherits open). */
  cli(args: string[], timeoutMs = 60_000, quiet = false): CliResult {
    const r = spawnSync(process.execPath, [RUNTIME_BIN, '--root', this.root, ...args], { encoding: 'utf8', timeout: timeoutMs, env: this.env, ...(quiet ? { stdio: 'ignore' as const } : {}) });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** The tail of the daemon's log, for assertion messages. */
  readLog(): string {
    const log = join(this.root, 'daemon.log');
    return existsSync(log) ? readFileSync(log, 'utf8').slice(-3000) : '(none)';
  }

  /** The pid of the root's daemon (from daemon.pid), 0 when none was written. */
  daemonPid(): number {
    try {
      return Number(readFileSync(join(this.root, 'daemon.pid'), 'utf8')) || 0;
    } catch {
      return 0;
    }
  }
}

export const report = (m: Monitored, key: string): Record<string, number | string> | undefined => m.reports.find((r) => key in r);
