// A private podman for the OCI runtime CLI tests: its own storage, state, locks, events, network
// definitions and configuration files (test/helpers/podman-config.ts), every podman command run
// inside a mount namespace the rig holds open. There, private tmpfs mounts cover the host paths
// podman and its runtimes use whatever the configuration says (PRIVATE_DIRS, and any the caller
// adds, e.g. another runtime's default --root), and the containers' root filesystems are mounted
// — so no mount, nsfs file, database or runtime state reaches the host's mount namespace. Networks are made in the calling process's
// network namespace, which must be one of its own (scripts/test.js gives each integration file
// one). Containers' cgroups go under a cgroup parent named after the rig (cgroupfs manager).
// stop() removes every container, kills what is left and removes what the rig made; leftovers()
// lists whatever is still there (empty: clean).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cgroupHierarchies, cgroupTree, killAndWait, liveProcesses, mountsAt, pidAlive, pidsIn, removeCgroups, sleep, unescapeMountPath } from './containerd-host.js';
import { hostNamespaceProblem, links } from './network.js';
import {
  containersConf, podmanPaths, registriesConf, RIG_ULIMITS, storageConf, storageDriverFor,
  type NetworkBackend, type PodmanPaths, type StorageDriver,
} from './podman-config.js';
import { RIG_BASE, runCollect, underTty, type RunOptions, type RunResult } from './rig-exec.js';
import { tempDir } from './tmp.js';

/** Temporary directories of these rigs start so; other rigs are recognised by it. */
const DIR_PREFIX = `${RIG_BASE}/vcpod-`;
/** Where netavark finds its plugins in Debian's package (podman's helper_binaries_dir). */
const NETAVARK = '/usr/lib/podman/netavark';
/**
 * Host paths podman 4.3 and its helpers use as root whatever the configuration says: the
 * containers' network namespaces (/run/netns), runc's state (/run/runc, its default --root:
 * podman passes runtimes no --root), netavark's IPAM database and aardvark's files
 * (/run/containers/networks), and containers/image's blob info cache (/var/lib/containers/cache).
 * Each gets a private tmpfs in the rig's mount namespace.
 */
const PRIVATE_DIRS = ['/run/netns', '/run/runc', '/run/containers', '/var/lib/containers'];
/** Host paths podman uses by default that the configuration moves; one appearing means the rig touched the host. */
const HOST_DEFAULTS = [
  '/run/libpod', '/etc/containers/networks', '/dev/shm/libpod_lock', '/etc/cni/net.d/87-podman-bridge.conflist',
  '/var/cache/containers/short-name-aliases.conf',
];

export interface StartPodmanOptions {
  /** A short label for the instance (its temporary directory's name), letters, digits and '-'. */
  name?: string;
  /** OCI runtimes by absolute path, each registered in containers.conf under its file name. */
  runtimes?: string[];
  /** The default runtime: 'runc' (the default) or one of `runtimes`. `podman --runtime PATH` works for those too. */
  runtime?: string;
  /** netavark (podman 4.3's default where no CNI state exists) or cni (/usr/lib/cni plugins). */
  networkBackend?: NetworkBackend;
  /** Overrides the choice of storageDriverFor(). */
  storageDriver?: StorageDriver;
  /** More absolute host directories to cover with a private tmpfs in the rig's mount namespace. */
  privateDirs?: string[];
}

/** The parts of `podman info --format json` the tests read. */
export interface PodmanInfo {
  host: { networkBackend?: string; ociRuntime?: { name?: string; path?: string; version?: string }; cgroupManager?: string; eventLogger?: string };
  store: { graphDriverName?: string; graphRoot?: string; runRoot?: string };
  version: { Version?: string };
}

export interface PodmanRig {
  /** The temporary directory holding the configuration, storage and state. */
  dir: string;
  paths: PodmanPaths;
  storageDriver: StorageDriver;
  networkBackend: NetworkBackend;
  /** Every container made by `run`/`create` through podman() goes below it, in every hierarchy. */
  cgroupParent: string;
  /** What `podman info` said when the rig started (what it chose: storage driver, network backend, runtime). */
  info: PodmanInfo;
  /** The process holding the rig's mount namespace open. */
  holderPid: number;
  /** `mnt:[inode]` of that namespace (podman, conmon and the runtimes run in it). */
  mountNamespace: string;
  /**
   * `podman GLOBAL-FLAGS ARGS` in the rig's mount namespace. ARGS may start with more global flags
   * (`--runtime PATH`); `run` and `create` get the rig's --ulimit flags and --cgroup-parent.
   */
  podman(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** The same, started and handed back for streaming (stdio piped; with tty, under a pseudo-terminal). */
  spawnPodman(args: string[], opts?: { tty?: boolean }): ChildProcess;
  /** Any command in the rig's mount namespace (e.g. to look at what the rig's tmpfs mounts hold). */
  exec(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** Removes every container, kills what is left, removes cgroups, links and directories. Idempotent. */
  stop(): Promise<void>;
  /** What is left of the rig on the host, one line per thing; empty after a clean stop(). */
  leftovers(): string[];
}

/** Why this host (or this process) cannot run a private podman, or null. */
export function podmanProblem(backend: NetworkBackend = 'netavark'): string | null {
  if (process.getuid?.() !== 0) return 'needs root (mount namespaces, cgroups, runc)';
  for (const tool of ['podman', 'conmon', 'runc', 'unshare', 'nsenter', 'script', 'iptables']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (scripts/setup.sh installs podman, conmon and runc)`;
  }
  if (backend === 'netavark' && !existsSync(NETAVARK)) return `${NETAVARK} is missing (scripts/setup.sh installs netavark)`;
  if (backend === 'cni' && !existsSync('/usr/lib/cni/bridge')) return '/usr/lib/cni/bridge is missing (scripts/setup.sh installs containernetworking-plugins)';
  const netns = hostNamespaceProblem();
  if (netns) return `podman makes its networks in this process's network namespace, and ${netns}`;
  const version = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) return `podman --version failed: ${(version.stderr || version.error?.message || '').trim()}`;
  return null;
}

// Host directories made as mount points for the private tmpfs mounts, removed again (rmdir: only
// if empty) when no rig is left — removing a mount point detaches the mounts on it in every
// namespace, so never while another process's rig may still be using it.
const madeByUs = new Set<string>();
let liveRigs = 0;
const exitKills = new Set<() => void>();
process.once('exit', () => { for (const kill of exitKills) kill(); });

/** Whether a podman rig of another process (or another rig of this one) is running. */
export function otherPodmanRigsRunning(ownDir: string): boolean {
  return liveProcesses().some(({ argv }) => argv.some((a) => a.startsWith(DIR_PREFIX) && a !== ownDir && !a.startsWith(`${ownDir}/`)));
}

/** podman's global flags that take a value (as `--flag value` or `--flag=value`), which may precede the command. */
const GLOBAL_VALUE_FLAGS = new Set([
  '--runtime', '--runtime-flag', '--log-level', '--storage-opt', '--conmon', '--hooks-dir', '--network-config-dir',
  '--network-backend', '--network-cmd-path', '--cgroup-manager', '--events-backend', '--root', '--runroot', '--tmpdir',
  '--storage-driver', '--volumepath', '--namespace', '--registries-conf', '--default-mounts-file', '--max-workers',
]);

/** The run/create argument lists get the rig's defaults right after the command's name. */
export function withContainerDefaults(args: string[], cgroupParent: string): string[] {
  let at = 0;
  while (at < args.length && args[at]!.startsWith('-')) at += GLOBAL_VALUE_FLAGS.has(args[at]!) ? 2 : 1;
  if (args[at] === 'container') at++;
  if (args[at] !== 'run' && args[at] !== 'create') return args;
  return [...args.slice(0, at + 1), ...RIG_ULIMITS.flatMap((u) => ['--ulimit', u]), '--cgroup-parent', cgroupParent, ...args.slice(at + 1)];
}

/** Mount points at or under `path` in the mount namespace of process `pid` (none once it is gone). */
function mountsOf(pid: number, path: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((f): f is string => !!f)
      .map(unescapeMountPath).filter((m) => m === path || m.startsWith(`${path}/`));
  } catch {
    return [];
  }
}

export async function startPodmanRig(options: StartPodmanOptions = {}): Promise<PodmanRig> {
  const name = options.name ?? 'rig';
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,15}$/.test(name)) throw new Error(`startPodmanRig: name must be 1-16 letters, digits or '-', not ${JSON.stringify(name)}`);
  const runtimes = options.runtimes ?? [];
  for (const [i, r] of runtimes.entries()) {
    if (!r.startsWith('/') || !existsSync(r)) throw new Error(`startPodmanRig: runtimes[${i}] must be an existing absolute path, not ${JSON.stringify(r)}`);
  }
  const runtime = options.runtime ?? 'runc';
  if (runtime !== 'runc' && !runtimes.includes(runtime) && !runtimes.some((r) => basename(r) === runtime)) {
    throw new Error(`startPodmanRig: runtime must be 'runc' or one of runtimes, not ${JSON.stringify(runtime)}`);
  }
  const networkBackend = options.networkBackend ?? 'netavark';
  if (networkBackend !== 'netavark' && networkBackend !== 'cni') throw new Error(`startPodmanRig: networkBackend must be netavark or cni, not ${JSON.stringify(networkBackend)}`);
  for (const [i, d] of (options.privateDirs ?? []).entries()) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(d)) throw new Error(`startPodmanRig: privateDirs[${i}] must be an absolute path of letters, digits and ._/-, not ${JSON.stringify(d)}`);
  }
  const problem = podmanProblem(networkBackend);
  if (problem) throw new Error(`startPodmanRig: ${problem}`);

  const tmp = tempDir(`vcpod-${name}`, RIG_BASE);
  const dir = tmp.path;
  const paths = podmanPaths(dir);
  for (const d of [paths.root, paths.runroot, paths.tmpdir, paths.networks]) mkdirSync(d, { recursive: true });
  const storageDriver = options.storageDriver ?? storageDriverFor(dir);
  writeFileSync(paths.containersConf, containersConf(paths, { runtimes, defaultRuntime: runtime, networkBackend }));
  writeFileSync(paths.storageConf, storageConf(paths, storageDriver));
  writeFileSync(paths.registriesConf, registriesConf());
  const cgroupParent = `/${basename(dir)}`;
  const cgroupDirs = () => cgroupHierarchies().flatMap((h) => cgroupTree(join(h, cgroupParent)));
  const hostDefaultsBefore = new Set(HOST_DEFAULTS.filter((p) => existsSync(p)));
  const linksBefore = new Set(links());

  const privateDirs = [...new Set([...PRIVATE_DIRS, ...(networkBackend === 'cni' ? ['/var/lib/cni'] : []), ...(options.privateDirs ?? [])])];
  for (const d of privateDirs) {
    if (existsSync(d)) continue;
    mkdirSync(d, { recursive: true });
    madeByUs.add(d);
  }
  liveRigs++;

  // The holder: sh in a new mount namespace, its argv naming the rig's directory (so that other
  // rigs see it running), idle until killed.
  const script = `set -e; ${privateDirs.map((d) => `mount -t tmpfs -o mode=0755 tmpfs ${d}; `).join('')}echo ready; while :; do sleep 3600; done`;
  const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const holderPid = holder.pid!;
  let holderLog = '', exited = false, ready = false;
  holder.stdout!.on('data', (d) => { if (String(d).includes('ready')) ready = true; });
  holder.stderr!.on('data', (d) => { holderLog = (holderLog + d).slice(-10_000); });
  holder.once('exit', () => { exited = true; });
  const ownedBy = (argv: string[]) => argv.some((a) => a === dir || a.startsWith(`${dir}/`));
  let mountNamespace = '';
  const rigProcesses = () => {
    const pids = new Set(pidsIn(cgroupDirs()));
    for (const p of liveProcesses()) if (p.pid === holderPid || ownedBy(p.argv) || (mountNamespace && p.mountNamespace === mountNamespace)) pids.add(p.pid);
    return pids;
  };
  const killSync = () => {
    for (const pid of rigProcesses()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  };
  exitKills.add(killSync);

  const env = {
    ...process.env,
    CONTAINERS_CONF: paths.containersConf,
    CONTAINERS_STORAGE_CONF: paths.storageConf,
    CONTAINERS_REGISTRIES_CONF: paths.registriesConf,
    TMPDIR: paths.tmpdir,
  };
  const globalFlags = [
    '--root', paths.root, '--runroot', paths.runroot, '--tmpdir', paths.tmpdir, '--storage-driver', storageDriver,
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
  ];
  // --root: the holder's root too, not the namespace's root mount — where the process runs
  // chrooted (the nested harness's L1 runs commands in a chroot), setns alone would land outside it.
  const inNs = (argv: string[]) => ['nsenter', `--target=${holderPid}`, '--mount', '--root', '--', ...argv];
  const podmanArgv = (args: string[]) => inNs(['podman', ...globalFlags, ...withContainerDefaults(args, cgroupParent)]);
  let stopped = false;
  const notRunning = (what: string) => new Error(`the podman rig (${dir}) is not running; cannot run ${what}`);

  const rig: PodmanRig = {
    dir,
    paths,
    storageDriver,
    networkBackend,
    cgroupParent,
    info: { host: {}, store: {}, version: {} },
    holderPid,
    get mountNamespace() { return mountNamespace; },
    podman(args, opts = {}) {
      if (stopped || exited) return Promise.reject(notRunning(`podman ${args.join(' ')}`));
      const argv = podmanArgv(args);
      return runCollect(opts.tty ? underTty(argv) : argv, opts, `podman ${args.join(' ')}`, env);
    },
    spawnPodman(args, opts = {}) {
      if (stopped || exited) throw notRunning(`podman ${args.join(' ')}`);
      const argv = opts.tty ? underTty(podmanArgv(args)) : podmanArgv(args);
      return spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, SHELL: '/bin/sh' } });
    },
    exec(argv, opts = {}) {
      if (stopped || exited) return Promise.reject(notRunning(argv.join(' ')));
      return runCollect(opts.tty ? underTty(inNs(argv)) : inNs(argv), opts, argv.join(' '), env);
    },
    async stop() {
      if (stopped) return;
      if (!exited && ready) {
        // podman's own removal first: it stops containers through the runtime, tears their
        // networks down (veths, netavark's firewall rules) and unmounts their root filesystems.
        const quick = { timeoutMs: 60_000 };
        await runCollect(podmanArgv(['pod', 'rm', '--all', '--force']), quick, 'podman pod rm', env).catch(() => null);
        await runCollect(podmanArgv(['rm', '--all', '--force', '--time', '0']), quick, 'podman rm', env).catch(() => null);
      }
      stopped = true;
      // What podman did not remove: conmon, runtimes and their helpers, container processes
      // (found by cgroup). Killing a parent can orphan its children: repeat.
      for (let round = 0; round < 5; round++) {
        const pids = rigProcesses();
        if (pids.size === 0) break;
        await killAndWait([...pids]);
      }
      // The last process of the namespace is gone, and with it the namespace and its mounts.
      for (const m of mountsAt(dir).reverse()) spawnSync('umount', ['--lazy', m]);
      removeCgroups(cgroupDirs());
      for (const link of links()) {
        if (!linksBefore.has(link)) spawnSync('ip', ['link', 'delete', link]);
      }
      tmp.remove();
      exitKills.delete(killSync);
      liveRigs--;
      if (liveRigs > 0 || otherPodmanRigsRunning(dir)) return;
      for (const d of [...madeByUs]) {
        try {
          rmdirSync(d);
          madeByUs.delete(d);
        } catch {
          /* not empty: someone else's now; leftovers() does not claim it */
        }
      }
    },
    leftovers() {
      const found: string[] = [];
      const byPid = new Map(liveProcesses().map((p) => [p.pid, p]));
      for (const pid of rigProcesses()) {
        const argv = byPid.get(pid)?.argv ?? [];
        found.push(`process ${pid} (${argv.slice(0, 4).join(' ')} …) of the rig`);
      }
      for (const cg of cgroupDirs()) {
        const pids = pidsIn([cg]);
        found.push(`cgroup ${cg}${pids.length ? ` holding ${pids.join(', ')}` : ''}`);
      }
      if (existsSync(dir)) found.push(`directory ${dir}`);
      for (const m of mountsAt(dir)) found.push(`mount ${m} (host mount namespace)`);
      for (const m of [dir, ...privateDirs].flatMap((p) => mountsOf(holderPid, p))) found.push(`mount ${m} (the rig's mount namespace)`);
      for (const p of HOST_DEFAULTS) if (!hostDefaultsBefore.has(p) && existsSync(p)) found.push(`${p} (a host default path of podman's) appeared`);
      for (const link of links()) if (!linksBefore.has(link)) found.push(`network link ${link}`);
      for (const d of madeByUs) {
        if (liveRigs === 0 && existsSync(d) && readdirSync(d).length === 0 && !otherPodmanRigsRunning(dir)) found.push(`directory ${d} (made by the rig)`);
      }
      return found;
    },
  };

  const end = Date.now() + 10_000;
  while (!ready) {
    if (exited || Date.now() > end) {
      const why = exited ? 'exited while starting' : 'did not start within 10 s';
      await rig.stop();
      throw new Error(`the podman rig's namespace holder ${why}: ${holderLog.trim()}`);
    }
    await sleep(10);
  }
  holder.stdout!.destroy();
  mountNamespace = readlinkSync(`/proc/${holderPid}/ns/mnt`);
  // The first command creates the storage and libpod's database; a failure here says why at once.
  const info = await rig.podman(['info', '--format', 'json']);
  try {
    if (info.code !== 0) throw new Error(`exit ${info.code}: ${info.stderr.trim()}`);
    rig.info = JSON.parse(info.stdout) as PodmanInfo;
  } catch (err) {
    await rig.stop();
    throw new Error(`podman info failed in the rig: ${(err as Error).message}`);
  }
  return rig;
}
