// The configuration files of a private podman (test/helpers/podman.ts): containers.conf,
// storage.conf and registries.conf, each read only from the rig's directory (CONTAINERS_CONF,
// CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF replace the system's files, they are not
// merged with them), so nothing of /etc/containers or /usr/share/containers changes what the
// tests see. Every path podman would otherwise take from the host (/var/lib/containers,
// /run/containers, /run/libpod, /etc/containers/networks, /var/tmp, /dev/shm/libpod_lock) points
// into the rig's directory instead.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** What rlimits podman gives a container unless told: more than this host's hard limits allow (DESIGN §11). */
export const RIG_ULIMITS = ['nofile=1024:1024', 'nproc=1024:1024'];

export type StorageDriver = 'overlay' | 'vfs';
export type NetworkBackend = 'netavark' | 'cni';

export interface PodmanPaths {
  /** The rig's directory; everything below is in it. */
  dir: string;
  /** containers/storage's graph root (images, layers, containers; podman's --root). */
  root: string;
  /** containers/storage's run root (podman's --runroot). */
  runroot: string;
  /** libpod's temporary state (--tmpdir): conmon's exit files, attach sockets, the file locks. */
  tmpdir: string;
  /** Network definitions (netavark's JSON or CNI conflists): the host's /etc/containers/networks stays untouched. */
  networks: string;
  events: string;
  containersConf: string;
  storageConf: string;
  registriesConf: string;
}

export function podmanPaths(dir: string): PodmanPaths {
  return {
    dir,
    root: join(dir, 'root'),
    runroot: join(dir, 'run'),
    tmpdir: join(dir, 'tmp'),
    networks: join(dir, 'networks'),
    events: join(dir, 'events.log'),
    containersConf: join(dir, 'containers.conf'),
    storageConf: join(dir, 'storage.conf'),
    registriesConf: join(dir, 'registries.conf'),
  };
}

/**
 * overlay where the rig's directory can back an overlay mount (not itself on overlayfs, and the
 * kernel has overlayfs), else vfs (plain copies: slower, but works on any filesystem).
 */
export function storageDriverFor(dir: string): StorageDriver {
  const kernelHasOverlay = readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.trim().endsWith('overlay'));
  if (!kernelHasOverlay) return 'vfs';
  const fsType = execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
  return fsType === 'overlayfs' ? 'vfs' : 'overlay';
}

export interface ContainersConfOptions {
  /** Runtimes by absolute path, each registered under its file name (podman stores that name with a container). */
  runtimes: string[];
  /** The default runtime: a registered name (runc) or one of `runtimes`. */
  defaultRuntime: string;
  networkBackend: NetworkBackend;
}

const q = (s: string) => JSON.stringify(s);
const list = (items: string[]) => `[${items.map(q).join(', ')}]`;

/** Absolute paths of runc as podman would search them; the first that exists wins there. */
const RUNC_PATHS = ['/usr/bin/runc', '/usr/sbin/runc', '/usr/local/bin/runc', '/usr/local/sbin/runc', '/sbin/runc', '/bin/runc'];

/** podman 4.3's own runtime_supports_json (containers/common v0.50's defaults). */
const JSON_RUNTIMES = ['crun', 'runc', 'kata', 'runsc', 'krun'];

export function runtimeName(runtime: string): string {
  return runtime.startsWith('/') ? basename(runtime) : runtime;
}

export function containersConf(p: PodmanPaths, opts: ContainersConfOptions): string {
  const runtimes = new Map<string, string[]>([['runc', RUNC_PATHS]]);
  for (const path of opts.runtimes) runtimes.set(runtimeName(path), [path]);
  return [
    '[containers]',
    // journald is not running here; k8s-file keeps `podman logs` working from a file under runroot.
    'log_driver = "k8s-file"',
    // Also passed as --ulimit on every run/create (podman.ts); here for whatever else makes containers.
    `default_ulimits = ${list(RIG_ULIMITS)}`,
    '',
    '[network]',
    `network_backend = ${q(opts.networkBackend)}`,
    `network_config_dir = ${q(p.networks)}`,
    `cni_plugin_dirs = ${list(['/usr/lib/cni'])}`,
    '',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = ${q(p.events)}`,
    // shm locks live in /dev/shm/libpod_lock, one segment for every podman on the host: two rigs
    // (or a rig and the system's podman) would hand out each other's locks. File locks are per tmp_dir.
    'lock_type = "file"',
    `tmp_dir = ${q(p.tmpdir)}`,
    `static_dir = ${q(join(p.root, 'libpod'))}`,
    `volume_path = ${q(join(p.root, 'volumes'))}`,
    `image_copy_tmp_dir = ${q(p.tmpdir)}`,
    // No registry is reachable: an image that was not loaded is an error at once, not a timeout.
    'pull_policy = "never"',
    `runtime = ${q(runtimeName(opts.defaultRuntime))}`,
    // podman hands `--log-format=json --log FILE` only to the runtimes named here (the list replaces
    // podman's own, which these repeat) and then reports a failed runtime call by the log's last
    // error; the others' failures are reported by exit status and stderr.
    `runtime_supports_json = ${list([...new Set([...JSON_RUNTIMES, ...opts.runtimes.map(runtimeName)])])}`,
    '',
    '[engine.runtimes]',
    ...[...runtimes].map(([name, paths]) => `${q(name)} = ${list(paths)}`),
    '',
  ].join('\n');
}

export function storageConf(p: PodmanPaths, driver: StorageDriver): string {
  return [
    '[storage]',
    `driver = ${q(driver)}`,
    `graphroot = ${q(p.root)}`,
    `runroot = ${q(p.runroot)}`,
    '',
    ...(driver === 'overlay' ? ['[storage.options.overlay]', 'mountopt = "nodev"', ''] : []),
  ].join('\n');
}

/** No search registries: short names never turn into pulls from the network. */
export function registriesConf(): string {
  return ['unqualified-search-registries = []', 'short-name-mode = "permissive"', ''].join('\n');
}
