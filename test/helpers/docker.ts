// A private Docker daemon (Debian's docker.io, 20.10) for the OCI runtime CLI tests: dockerd runs in
// the mount namespace of a private containerd (test/helpers/containerd.ts) and uses that containerd
// (--containerd), so the overlay mounts dockerd makes for a container's root are the ones the runc
// shim sees, and shim sockets land on the rig's tmpfs over /run/containerd. A tmpfs covers
// /run/docker there too (dockerd makes its plugin directory there, whatever --exec-root says).
// Its data, exec root, socket, pid file, config and trust key are in the containerd rig's
// directory; its containers' cgroups go under /vc-test/, which the containerd rig cleans.
// No bridge, no iptables: a test's network is the namespace it runs in (scripts/test.js).
// The client is Debian's /usr/bin/docker (20.10, the daemon's own version) by its absolute path:
// another docker CLI on PATH (this machine has a docker 28 in /usr/local/bin) would work through
// API negotiation, but the tests should run what scripts/setup.sh installs everywhere.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { containerdProblem, startContainerd, type Containerd } from './containerd.js';
import { liveProcesses, pidAlive, sleep } from './containerd-host.js';
import { runCollect, underTty, type RunOptions, type RunResult } from './rig-exec.js';

export const DOCKERD = '/usr/sbin/dockerd';
export const DOCKER_CLIENT = '/usr/bin/docker';
/** Where dockerd makes /run/docker/plugins regardless of its exec root: a tmpfs in the rig's namespace. */
const DOCKER_RUN_DIR = '/run/docker';

export interface StartDockerOptions {
  /** A short label (the rig directory's name), 1-13 letters, digits or '-'. */
  name?: string;
  /** Extra OCI runtimes, name → absolute path of a runc-compatible binary (dockerd --add-runtime). */
  runtimes?: Record<string, string>;
  /** The runtime `docker run` uses without --runtime (default runc). */
  defaultRuntime?: string;
  /** overlay2 (default) or vfs. */
  storageDriver?: 'overlay2' | 'vfs';
}

export type DockerOptions = RunOptions;

export interface DockerRig {
  /** The API socket (unix://…), as DOCKER_HOST. */
  host: string;
  /** The containerd rig's directory, which holds dockerd's too (docker/). */
  dir: string;
  /** dockerd's pid. */
  pid: number;
  /** The private containerd dockerd uses. */
  containerd: Containerd;
  /** Debian's docker client with DOCKER_HOST and a private DOCKER_CONFIG. */
  docker(args: string[], opts?: DockerOptions): Promise<RunResult>;
  /** The same, started and handed back for streaming (stdio piped); tty: under a pseudo-terminal. */
  spawnDocker(args: string[], opts?: { tty?: boolean }): ChildProcess;
  /** dockerd's stderr so far, for failure messages. */
  logs(): string;
  /** Removes every container, stops dockerd, then the containerd rig; removes what it made. Idempotent. */
  stop(): Promise<void>;
  /** What is left on the host, one line per thing; empty after a clean stop(). */
  leftovers(): string[];
}

/** Why this host cannot run the docker rig, or null. */
export function dockerProblem(): string | null {
  const containerd = containerdProblem();
  if (containerd) return containerd;
  for (const file of [DOCKERD, DOCKER_CLIENT]) {
    if (!existsSync(file)) return `${file} is missing (scripts/setup.sh installs docker.io)`;
  }
  if (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0) return 'skopeo is not installed (the tests turn OCI archives into docker archives with it)';
  return null;
}

let madeRunDir = false;
/** Network devices of this process's network namespace (/sys/class/net shows sysfs's, the mounter's). */
const netDevices = () => new Set(readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean));
/** dockerd processes other than `ownPid` (another rig's, or the system's): they may mount over /run/docker. */
const otherDockerds = (ownPid: number) => liveProcesses().some((p) => p.pid !== ownPid && basename(p.argv[0] ?? '') === 'dockerd');

export async function startDockerRig(options: StartDockerOptions = {}): Promise<DockerRig> {
  const name = options.name ?? 'rig';
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,12}$/.test(name)) throw new Error(`startDockerRig: name must be 1-13 letters, digits or '-', not ${JSON.stringify(name)}`);
  const runtimes = Object.entries(options.runtimes ?? {});
  for (const [rt, path] of runtimes) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(rt) || rt === 'runc') throw new Error(`startDockerRig: runtimes key must be a name of letters, digits, '_', '.', '-' other than runc, not ${JSON.stringify(rt)}`);
    if (!path.startsWith('/') || !existsSync(path)) throw new Error(`startDockerRig: runtimes.${rt} must be an existing absolute path, not ${JSON.stringify(path)}`);
  }
  const defaultRuntime = options.defaultRuntime ?? 'runc';
  if (defaultRuntime !== 'runc' && !runtimes.some(([rt]) => rt === defaultRuntime)) {
    throw new Error(`startDockerRig: defaultRuntime must be runc or a key of runtimes, not ${JSON.stringify(defaultRuntime)}`);
  }
  const storageDriver = options.storageDriver ?? 'overlay2';
  if (storageDriver !== 'overlay2' && storageDriver !== 'vfs') throw new Error(`startDockerRig: storageDriver must be overlay2 or vfs, not ${JSON.stringify(storageDriver)}`);
  const problem = dockerProblem();
  if (problem) throw new Error(`startDockerRig: ${problem}`);

  const devicesBefore = netDevices();
  const containerd = await startContainerd({ name: `dk-${name}` });
  const dir = join(containerd.dir, 'docker');
  mkdirSync(join(dir, 'client'), { recursive: true });
  const host = `unix://${join(dir, 'docker.sock')}`;
  const configFile = join(dir, 'daemon.json');
  // A config file of its own: the host's /etc/docker/daemon.json would merge with the flags (and
  // conflict with them); the trust key would otherwise be written to /etc/docker/key.json.
  writeFileSync(configFile, `${JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }, null, 2)}\n`);
  if (!existsSync(DOCKER_RUN_DIR)) {
    mkdirSync(DOCKER_RUN_DIR, { recursive: true });
    madeRunDir = true;
  }
  const args = [
    '--config-file', configFile,
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'),
    '-H', host,
    '--containerd', containerd.address,
    '--storage-driver', storageDriver,
    '--iptables=false', '--ip-masq=false', '--bridge=none',
    '--exec-opt', 'native.cgroupdriver=cgroupfs',
    '--cgroup-parent', `/${containerd.namespace}/docker-${basename(containerd.dir)}`,
    // The host's hard limits (nofile 20000 here) are below dockerd's defaults for containers.
    '--default-ulimit', 'nofile=1024:1024', '--default-ulimit', 'nproc=1024:1024',
    ...runtimes.flatMap(([rt, path]) => ['--add-runtime', `${rt}=${path}`]),
    '--default-runtime', defaultRuntime,
  ];
  // In containerd's mount namespace (and root: see containerd.ts); nsenter and sh exec, so the pid is dockerd's.
  const child = spawn('nsenter', [`--target=${containerd.pid}`, '--mount', '--root', '--', 'sh', '-c',
    `mount -t tmpfs -o mode=0700 tmpfs ${DOCKER_RUN_DIR} && exec "$0" "$@"`, DOCKERD, ...args],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = child.pid!;
  let log = '';
  child.stderr!.on('data', (d) => { log = (log + d).slice(-1_000_000); });
  let exited = false;
  child.once('exit', () => { exited = true; });
  const killSync = () => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } };
  process.once('exit', killSync);

  // DOCKER_CONFIG: the client's own config directory, not ~/.docker.
  const clientEnv = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: join(dir, 'client') };
  const clientArgv = (args: string[]) => [DOCKER_CLIENT, ...args];
  let stopped = false;
  const rig: DockerRig = {
    host,
    dir: containerd.dir,
    pid,
    containerd,
    docker(args, opts = {}) {
      if (stopped || exited) return Promise.reject(new Error(`dockerd (${dir}) is not running; cannot run docker ${args.join(' ')}`));
      const argv = opts.tty ? underTty(clientArgv(args)) : clientArgv(args);
      return runCollect(argv, opts, `docker ${args.join(' ')}`, clientEnv);
    },
    spawnDocker(args, opts = {}) {
      const argv = opts.tty ? underTty(clientArgv(args)) : clientArgv(args);
      return spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...clientEnv, SHELL: '/bin/sh' } });
    },
    logs: () => log,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!exited) {
        // Containers first, through dockerd, so it unmounts their roots and forgets them.
        const quick = { timeoutMs: 20_000 };
        const ids = await runCollect(clientArgv(['ps', '-aq']), quick, 'docker ps -aq', clientEnv).catch(() => null);
        const list = ids?.code === 0 ? ids.stdout.split('\n').map((s) => s.trim()).filter(Boolean) : [];
        if (list.length) await runCollect(clientArgv(['rm', '--force', ...list]), quick, 'docker rm -f', clientEnv).catch(() => null);
        // A network's bridge outlives dockerd (it is in the data root, the device in the test's namespace).
        await runCollect(clientArgv(['network', 'prune', '--force']), quick, 'docker network prune', clientEnv).catch(() => null);
        child.kill('SIGTERM');
        for (const end = Date.now() + 15_000; !exited && Date.now() < end;) await sleep(20);
        if (!exited) child.kill('SIGKILL');
        while (!exited && pidAlive(pid)) await sleep(20);
      }
      process.removeListener('exit', killSync);
      // What dockerd could not remove itself (it was killed): its networks' bridges and veths.
      for (const dev of netDevices()) {
        if (!devicesBefore.has(dev) && /^(br-[0-9a-f]{12}|veth[0-9a-f]{7})$/.test(dev)) spawnSync('ip', ['link', 'delete', dev]);
      }
      // Kills what is left in its namespace and cgroups (shims, containers), removes the directory.
      await containerd.stop();
      if (madeRunDir && !otherDockerds(pid)) {
        try {
          rmdirSync(DOCKER_RUN_DIR);
          madeRunDir = false;
        } catch {
          /* not empty: someone else's now */
        }
      }
    },
    leftovers() {
      const found = containerd.leftovers();
      if (pidAlive(pid) && !found.some((l) => l.startsWith(`process ${pid} `))) found.push(`process ${pid} (dockerd)`);
      if (madeRunDir && existsSync(DOCKER_RUN_DIR) && !otherDockerds(pid)) found.push(`directory ${DOCKER_RUN_DIR} (made by the rig)`);
      for (const dev of netDevices()) if (!devicesBefore.has(dev)) found.push(`network device ${dev}`);
      return found;
    },
  };

  // Ready once the API socket answers; an early exit or a hang says why with dockerd's log.
  const end = Date.now() + 30_000;
  while (!/API listen on/.test(log)) {
    if (exited || Date.now() > end) {
      const why = exited ? 'exited while starting' : 'did not start within 30 s';
      const dockerdLog = log;
      await rig.stop();
      throw new Error(`dockerd ${why}; its log:\n${dockerdLog.slice(-4000)}\ncontainerd's log (end):\n${containerd.logs().slice(-2000)}`);
    }
    await sleep(20);
  }
  return rig;
}
