// A private containerd for the shim tests and benchmarks: its own root, state, sockets and config,
// run inside a mount namespace of its own where a private tmpfs covers /run/containerd — shim
// sockets and ctr's FIFOs go there whatever the config says, so nothing touches the host's
// /run/containerd. ctr runs inside that namespace too (nsenter), so the FIFO paths it hands to
// containerd resolve. stop() kills every task, shim and process the instance started and removes
// what it made; leftovers() lists whatever is still there (empty: clean).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cgroupHierarchies, cgroupTree, killAndWait, liveProcesses, mountsAt, pidAlive, pidsIn, removeCgroups, sleep,
} from './containerd-host.js';
import { RIG_BASE, runCollect, underTty, type RunOptions, type RunResult } from './rig-exec.js';
import { tempDir } from './tmp.js';
import { CNI_STATE_DIR, CRI_NAMESPACE, criToml, HOST_NETNS_DIR, type CriOptions } from './cri/config.js';

/** The containerd namespace every ctr call uses (also the cgroup parent runc makes: /vc-test/ID). */
export const CTR_NAMESPACE = 'vc-test';
/** Where containerd puts shim sockets and ctr its FIFOs, regardless of the configured state dir. */
export const RUN_DIR = '/run/containerd';
/** Temporary directories of these rigs start so; other rigs are recognised by it. */
const DIR_PREFIX = `${RIG_BASE}/vcctd-`;

export interface StartContainerdOptions {
  /** Directories put in front of containerd's PATH, where it looks for `containerd-shim-NAME-v2`. */
  shimPath?: string[];
  /** A short label for the instance (its temporary directory's name), letters, digits and '-'. */
  name?: string;
  /**
   * Enables containerd's CRI plugin with these settings (test/helpers/cri/rig.ts makes them: use
   * startCriContainerd). A private tmpfs then covers /var/lib/cni too (libcni's result cache).
   */
  cri?: CriOptions;
}

export interface CtrOptions extends RunOptions {
  /** The containerd namespace (default vc-test; CRI's is k8s.io). */
  namespace?: string;
}

export type CtrResult = RunResult;

export interface Containerd {
  /** containerd's gRPC socket (in `dir`, visible from the host's mount namespace). */
  address: string;
  /** Its ttrpc socket: TTRPC_ADDRESS for shims, where they publish events. */
  ttrpcAddress: string;
  /** The temporary directory holding config.toml, root/, state/ and the sockets. */
  dir: string;
  pid: number;
  namespace: string;
  /** `mnt:[inode]` of containerd's mount namespace (shims and what they start without a namespace of their own are in it). */
  mountNamespace: string;
  /** `ctr --address … --namespace vc-test ARGS`, inside containerd's mount namespace. */
  ctr(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  /** The same, started and handed back for streaming (stdio piped). */
  spawnCtr(args: string[], opts?: { tty?: boolean }): ChildProcess;
  /** Any command inside containerd's mount namespace (e.g. to look at /run/containerd there). */
  exec(argv: string[], opts?: CtrOptions): Promise<CtrResult>;
  /** containerd's stderr so far (its log), for failure messages. */
  logs(): string;
  /** Kills tasks, shims and containerd, removes its cgroups and directories. Idempotent. */
  stop(): Promise<void>;
  /**
   * What is left of it on the host, one line per thing; empty after a clean stop(). Cgroups under
   * /vc-test are counted only while no other process runs a rig (they share the namespace).
   */
  leftovers(): string[];
}

/** Why this host cannot run a private containerd, or null. */
export function containerdProblem(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (mount namespaces, cgroups, runc)';
  for (const tool of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'unshare', 'nsenter', 'script']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (scripts/setup.sh installs containerd and runc)`;
  }
  return null;
}

// The host's /run/containerd (and /var/lib/cni for CRI) is made only if missing (the tmpfs needs a
// mount point), and removed again (rmdir: only if empty) when the last rig is gone — unless another
// process's rig still mounts over it: removing a mount point detaches the mounts on it in every namespace.
const madeByUs = new Set<string>();
let liveRigs = 0;
const exitKills = new Set<() => void>();
process.once('exit', () => { for (const kill of exitKills) kill(); });

/** Whether a rig of another process (or another rig of this one) is running: its containerd or shims. */
export function otherRigsRunning(ownDir: string): boolean {
  return liveProcesses().some(({ argv }) => argv.some((a) => a.startsWith(DIR_PREFIX) && !a.startsWith(`${ownDir}/`)) && argv.some((a) => /containerd/.test(a)));
}

function configToml(dir: string, cri: CriOptions | undefined): string {
  const q = (s: string) => JSON.stringify(s);
  // CRI only when asked; opt would make /opt/containerd on the host; the snapshotters other than
  // overlayfs and native only probe (aufs runs modprobe) and fail here.
  const disabled = [...(cri ? [] : ['io.containerd.grpc.v1.cri']), 'io.containerd.internal.v1.opt', 'io.containerd.snapshotter.v1.aufs',
    'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper'];
  return [
    'version = 2',
    `root = ${q(join(dir, 'root'))}`,
    `state = ${q(join(dir, 'state'))}`,
    `disabled_plugins = [${disabled.map(q).join(', ')}]`,
    '[grpc]',
    `  address = ${q(join(dir, 'containerd.sock'))}`,
    '[ttrpc]',
    `  address = ${q(join(dir, 'containerd.sock.ttrpc'))}`,
    ...(cri ? [criToml(cri)] : []),
    '',
  ].join('\n');
}

/** Names in /var/run/netns (where CRI would put pods' network namespaces without netns_mounts_under_state_dir). */
function netnsEntries(): Set<string> {
  try {
    return new Set(readdirSync(HOST_NETNS_DIR));
  } catch {
    return new Set();
  }
}

export async function startContainerd(options: StartContainerdOptions = {}): Promise<Containerd> {
  const name = options.name ?? 'rig';
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,15}$/.test(name)) throw new Error(`startContainerd: name must be 1-16 letters, digits or '-', not ${JSON.stringify(name)}`);
  for (const [i, d] of (options.shimPath ?? []).entries()) {
    if (!d.startsWith('/')) throw new Error(`startContainerd: shimPath[${i}] must be an absolute directory, not ${JSON.stringify(d)}`);
  }
  const problem = containerdProblem();
  if (problem) throw new Error(`startContainerd: ${problem}`);

  const tmp = tempDir(`vcctd-${name}`, RIG_BASE);
  const dir = tmp.path;
  const address = join(dir, 'containerd.sock');
  const configPath = join(dir, 'config.toml');
  writeFileSync(configPath, configToml(dir, options.cri));
  const cgroupParents = cgroupHierarchies().map((h) => join(h, CTR_NAMESPACE));
  const parentsBefore = new Set(cgroupParents.filter((p) => existsSync(p)));
  // Covered by a tmpfs in the rig's mount namespace: what containerd, its shims and CNI write there
  // whatever the config says.
  const privateDirs = [RUN_DIR, ...(options.cri ? [CNI_STATE_DIR] : [])];
  for (const d of privateDirs) {
    if (existsSync(d)) continue;
    mkdirSync(d, { recursive: true });
    madeByUs.add(d);
  }
  const netnsBefore = netnsEntries();
  liveRigs++;

  const PATH = [...(options.shimPath ?? []), process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':');
  // unshare execs sh, which execs containerd: one pid throughout, the namespace's first process.
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
    `${privateDirs.map((d) => `mount -t tmpfs -o mode=0711 tmpfs ${d} && `).join('')}exec containerd --config "$0"${process.env.VC_RIG_CONTAINERD_DEBUG === '1' ? ' --log-level debug' : ''}`, configPath],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH } });
  const pid = child.pid!;
  let log = '';
  child.stderr!.on('data', (d) => { log = (log + d).slice(-1_000_000); });
  let exited = false;
  child.once('exit', () => { exited = true; });
  const ownedBy = (argv: string[]) => argv.some((a) => a.includes(`${dir}/`));
  const killSync = () => {
    for (const p of liveProcesses()) if (p.pid === pid || ownedBy(p.argv)) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  };
  exitKills.add(killSync);

  let mountNamespace = '';
  let stopped = false;
  // --root: containerd's root too, not the namespace's root mount — where the process runs chrooted
  // (the nested harness's L1 runs commands in a chroot), setns alone would land outside it.
  const inNs = (argv: string[]) => ['nsenter', `--target=${pid}`, '--mount', '--root', '--', ...argv];
  const ctrArgv = (args: string[], namespace = CTR_NAMESPACE) => inNs(['ctr', '--address', address, '--namespace', namespace, ...args]);

  const rig: Containerd = {
    address,
    ttrpcAddress: `${address}.ttrpc`,
    dir,
    pid,
    namespace: CTR_NAMESPACE,
    get mountNamespace() { return mountNamespace; },
    exec(argv, opts = {}) {
      if (stopped || exited) return Promise.reject(new Error(`containerd (${dir}) is not running; cannot run ${argv.join(' ')}`));
      const full = opts.tty ? underTty(inNs(argv)) : inNs(argv);
      return runCollect(full, opts, argv.join(' '));
    },
    ctr(args, opts = {}) {
      if (stopped || exited) return Promise.reject(new Error(`containerd (${dir}) is not running; cannot run ctr ${args.join(' ')}`));
      const full = opts.tty ? underTty(ctrArgv(args, opts.namespace)) : ctrArgv(args, opts.namespace);
      return runCollect(full, opts, `ctr ${args.join(' ')}`);
    },
    spawnCtr(args, opts = {}) {
      const full = opts.tty ? underTty(ctrArgv(args)) : ctrArgv(args);
      return spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh' } });
    },
    logs: () => log,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!exited) {
        const quick = { timeoutMs: 10_000 };
        const ids = async (what: string, ns: string) => {
          const r = await runCollect(ctrArgv([what, 'ls', '-q'], ns), quick, `ctr ${what} ls`).catch(() => null);
          return r && r.code === 0 ? r.stdout.split('\n').map((s) => s.trim()).filter(Boolean) : [];
        };
        // CRI's own containers (what StopPodSandbox/RemovePodSandbox did not remove) are in its namespace.
        for (const ns of options.cri ? [CTR_NAMESPACE, CRI_NAMESPACE] : [CTR_NAMESPACE]) {
          for (const id of await ids('tasks', ns)) await runCollect(ctrArgv(['tasks', 'delete', '--force', id], ns), quick, 'ctr tasks delete').catch(() => null);
          for (const id of await ids('containers', ns)) await runCollect(ctrArgv(['containers', 'delete', id], ns), quick, 'ctr containers delete').catch(() => null);
        }
        child.kill('SIGTERM');
        const end = Date.now() + 5000;
        while (!exited && Date.now() < end) await sleep(20);
        if (!exited) child.kill('SIGKILL');
      }
      // Shims name our address; what they started (a VMM, runc's container processes) is in our
      // mount namespace or our cgroups. Killing a shim can orphan its children: repeat.
      const cgroupDirs = () => cgroupParents.flatMap(cgroupTree);
      for (let round = 0; round < 5; round++) {
        const pids = new Set(pidsIn(cgroupDirs()));
        for (const p of liveProcesses()) if (p.pid === pid || ownedBy(p.argv) || (mountNamespace && p.mountNamespace === mountNamespace)) pids.add(p.pid);
        if (pids.size === 0) break;
        await killAndWait([...pids]);
      }
      while (!exited && pidAlive(pid)) await sleep(20);
      // Rigs in other processes share the namespace, so its cgroups cannot be told apart: the last
      // rig to stop removes them (rmdir: only empty ones). Two stopping together would each see
      // the other: wait a little for one that is stopping too. (What stays is empty and harmless,
      // and the next rig to stop alone removes it.)
      let others = otherRigsRunning(dir);
      for (const end = Date.now() + 2000; others && Date.now() < end; others = otherRigsRunning(dir)) await sleep(100);
      if (!others) removeCgroups(cgroupDirs());
      tmp.remove();
      exitKills.delete(killSync);
      liveRigs--;
      for (const d of [...madeByUs]) {
        if (liveRigs > 0 || others) continue;
        try {
          rmdirSync(d);
          madeByUs.delete(d);
        } catch {
          /* not empty: someone else's; leftovers() does not claim it */
        }
      }
    },
    leftovers() {
      const found: string[] = [];
      for (const p of liveProcesses()) {
        if (p.pid === pid || ownedBy(p.argv)) found.push(`process ${p.pid} (${p.argv.slice(0, 4).join(' ')} …) names ${dir}`);
        else if (mountNamespace && p.mountNamespace === mountNamespace) found.push(`process ${p.pid} (${p.argv.slice(0, 4).join(' ')} …) in containerd's mount namespace`);
      }
      // While another process's rig runs, the namespace's cgroups may be its (see stop()).
      const cgroups = otherRigsRunning(dir) ? [] : cgroupParents.flatMap(cgroupTree);
      for (const cg of cgroups) {
        if (parentsBefore.has(cg)) continue;
        const pids = pidsIn([cg]);
        found.push(`cgroup ${cg}${pids.length ? ` holding ${pids.join(', ')}` : ''}`);
      }
      if (existsSync(dir)) found.push(`directory ${dir}`);
      for (const m of [...mountsAt(dir), ...privateDirs.flatMap(mountsAt)]) found.push(`mount ${m} (host mount namespace)`);
      // Only ever empty on the host when it is ours: a containerd in the host's mount namespace
      // (a developer's, or the system's) fills it, and then it is not ours to remove.
      for (const d of madeByUs) {
        if (liveRigs === 0 && existsSync(d) && readdirSync(d).length === 0 && !otherRigsRunning(dir)) found.push(`directory ${d} (made by the rig)`);
      }
      for (const n of netnsEntries()) if (!netnsBefore.has(n)) found.push(`network namespace ${HOST_NETNS_DIR}/${n}`);
      return found;
    },
  };

  // Ready once both sockets are served; an early exit or a hang says why with containerd's log.
  const end = Date.now() + 20_000;
  while (!/containerd successfully booted/.test(log) || !existsSync(address)) {
    if (exited || Date.now() > end) {
      const why = exited ? 'exited while starting' : 'did not start within 20 s';
      await rig.stop();
      throw new Error(`containerd ${why}; its log:\n${log.slice(-4000)}`);
    }
    await sleep(20);
  }
  mountNamespace = readlinkSync(`/proc/${pid}/ns/mnt`);
  return rig;
}
