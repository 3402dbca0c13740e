// The CRI test rig: the private containerd of test/helpers/containerd.ts with its CRI plugin on,
// pods networked by CNI (bridge + host-local + portmap from /usr/lib/cni; CRI adds loopback) in
// the test's own network namespace, a pause image and busybox built here and imported (nothing can
// be pulled), and a CRI client on containerd's socket. Runtime handlers: "" (runc, the default)
// and "virtc" (our shim, io.containerd.virtc.v2, found on containerd's PATH).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { containerdProblem, startContainerd, type Containerd } from '../containerd.js';
import { BUSYBOX_REF, importArchive, importBusybox } from '../containerd-image.js';
import { ociImage } from '../images.js';
import { tempDir } from '../tmp.js';
import { CriClient } from './client.js';
import { cniConflist, cniPaths, CRI_NAMESPACE, DEFAULT_CNI_BIN_DIR, VIRTC_RUNTIME, type CriRuntime } from './config.js';

export const PAUSE_REF = 'docker.io/library/vc-pause:test';
const PAUSE_SOURCE = fileURLToPath(new URL('../../../../test/fixtures/cri/pause.c', import.meta.url));
const CNI_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];

export interface StartCriOptions {
  /** A short label (letters, digits, '-'); the rig's directory is named after it. */
  name?: string;
  /** Directories put first on containerd's PATH: where it finds containerd-shim-virtc-v2. */
  shimPath?: string[];
  /** The pods' subnet (default 10.232.0.0/24). */
  subnet?: string;
  /** The CNI bridge's name (default vccri0), made in the current network namespace. */
  bridge?: string;
  /** Runtime handlers besides runc (default: virtc, passing io.virtcontainers.* annotations on). */
  runtimes?: Record<string, CriRuntime>;
}

export interface CriRig {
  containerd: Containerd;
  cri: CriClient;
  /** Images imported in CRI's namespace. */
  images: { pause: string; busybox: string };
  /** How the pause image was made: a static C program (test/fixtures/cri/pause.c) or a shell loop. */
  pauseKind: 'static-c' | 'shell';
  /** A directory for pods' log_directory (inside the rig's directory: removed by stop()). */
  logRoot: string;
  subnet: string;
  bridge: string;
  streamPort: number;
  /** Stops and removes every pod sandbox through CRI, then stops containerd and removes the bridge. */
  stop(): Promise<void>;
  /** containerd's leftovers plus CNI's in this network namespace (the bridge). Empty: clean. */
  leftovers(): string[];
}

/** Why this host (or this process) cannot run the CRI rig, or null. */
export function criProblem(): string | null {
  const base = containerdProblem();
  if (base) return base;
  for (const p of CNI_PLUGINS) if (!existsSync(join(DEFAULT_CNI_BIN_DIR, p))) return `the CNI plugin ${p} is not in ${DEFAULT_CNI_BIN_DIR} (Debian: containernetworking-plugins)`;
  if (spawnSync('sh', ['-c', 'command -v iptables']).status !== 0) return 'iptables is not installed (the portmap CNI plugin needs it)';
  if (spawnSync('sh', ['-c', 'command -v umoci']).status !== 0) return 'umoci is not installed (the rig builds its images with it)';
  // The bridge, veths and iptables rules would otherwise land in the host's namespace. Init's
  // namespace may be unreadable (a sandbox): then an ancestor in another namespace shows that this
  // process runs in one made for it (scripts/test.js runs each file under `unshare --net`).
  const netns = (pid: number | string) => { try { return readlinkSync(`/proc/${pid}/ns/net`); } catch { return null; } };
  const parentOf = (pid: number) => { try { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]); } catch { return 0; } };
  const own = netns('self');
  if (!own) return 'cannot read /proc/self/ns/net';
  let ownNamespace = false;
  for (let pid = process.ppid; pid > 0; pid = parentOf(pid)) {
    const theirs = netns(pid);
    if (theirs !== null && theirs !== own) { ownNamespace = true; break; }
  }
  if (!ownNamespace) return "this process is in the host's network namespace (run it through scripts/test.js, which runs it under unshare --net)";
  return null;
}

let pauseCache: { archive: string; kind: CriRig['pauseKind'] } | null = null;

/** The pause image's OCI archive, built once per process: static C when cc can link static, else a shell loop. */
function pauseArchive(): { archive: string; kind: CriRig['pauseKind'] } {
  if (pauseCache) return pauseCache;
  const work = tempDir('vcpause');
  process.once('exit', () => work.remove());
  const bin = join(work.path, 'pause');
  const built = spawnSync('cc', ['-static', '-O2', '-o', bin, PAUSE_SOURCE], { encoding: 'utf8' });
  const kind = built.status === 0 ? 'static-c' : 'shell';
  const layout = join(work.path, 'layout');
  ociImage(work.path, layout, 'test', kind === 'static-c'
    ? { copies: { pause: bin }, entrypoint: ['/pause'] }
    // Exits 0 on SIGTERM, within a second (the trap runs between sleeps).
    : { entrypoint: ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 1; done'] });
  const archive = join(work.path, 'pause.tar');
  execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
  pauseCache = { archive, kind };
  return pauseCache;
}

/** A free TCP port on 127.0.0.1 in this network namespace (for CRI's streaming server). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const linkExists = (name: string) => spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
/**
 * The links enslaved to `bridge` in this network namespace. (Not /sys/class/net: sysfs shows the
 * namespace of whoever mounted it, the host's under a plain `unshare --net`.)
 */
export function bridgePorts(bridge: string): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter((n): n is string => !!n);
}
/** iptables chains CNI's plugins made (portmap's CNI-HOSTPORT-*, bridge's CNI-*), table:chain. */
function cniChains(): string[] {
  const out: string[] = [];
  for (const table of ['nat', 'filter']) {
    const r = spawnSync('iptables', ['-t', table, '-S'], { encoding: 'utf8' });
    for (const line of (r.stdout ?? '').split('\n')) {
      const m = /^-N (CNI-\S+)$/.exec(line);
      if (m) out.push(`${table}:${m[1]}`);
    }
  }
  return out;
}

export async function startCriContainerd(options: StartCriOptions = {}): Promise<CriRig> {
  const problem = criProblem();
  if (problem) throw new Error(`startCriContainerd: ${problem}`);
  const subnet = options.subnet ?? '10.232.0.0/24';
  const bridge = options.bridge ?? 'vccri0';
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet)) throw new Error(`startCriContainerd: subnet must be an IPv4 CIDR like 10.232.0.0/24, not ${JSON.stringify(subnet)}`);
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge)) throw new Error(`startCriContainerd: bridge must be an interface name (1-15 letters, digits, '-', '_'), not ${JSON.stringify(bridge)}`);
  if (linkExists(bridge)) throw new Error(`startCriContainerd: a link named ${bridge} already exists in this network namespace (another rig's?)`);
  const chainsBefore = new Set(cniChains());
  const pause = pauseArchive();
  const streamPort = await freePort();
  // The conflist goes in a directory of its own made before containerd starts (CRI watches it);
  // its path must be known before the rig's directory exists, so it lives in one of its own.
  const cniDir = tempDir('vccni');
  const { confDir, ipamDataDir } = cniPaths(cniDir.path);
  mkdirSync(confDir, { recursive: true });
  writeFileSync(join(confDir, '10-vc-test.conflist'), cniConflist({ name: 'vc-test', bridge, subnet, ipamDataDir }));

  let containerd: Containerd;
  try {
    containerd = await startContainerd({
      name: options.name ?? 'cri',
      shimPath: options.shimPath,
      cri: { sandboxImage: PAUSE_REF, cniConfDir: confDir, streamServerPort: streamPort, runtimes: options.runtimes ?? { virtc: VIRTC_RUNTIME } },
    });
  } catch (err) {
    cniDir.remove();
    throw err;
  }
  const cri = new CriClient(containerd.address);
  const logRoot = join(containerd.dir, 'pod-logs');
  mkdirSync(logRoot);
  let stopped = false;
  const rig: CriRig = {
    containerd,
    cri,
    images: { pause: PAUSE_REF, busybox: BUSYBOX_REF },
    pauseKind: pause.kind,
    logRoot,
    subnet,
    bridge,
    streamPort,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Through CRI first, as the kubelet would: CNI DEL frees the IPs and removes the veths and
      // port mappings; what is left then is containerd's to clean (rig.stop()).
      const pods = await cri.listPodSandbox().catch(() => []);
      for (const p of pods) {
        await cri.stopPodSandbox(p.id).catch(() => undefined);
        await cri.removePodSandbox(p.id).catch(() => undefined);
      }
      cri.close();
      await containerd.stop();
      if (linkExists(bridge)) spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
      // The chains CNI made in this namespace (portmap's), flushed then deleted, references first.
      const made = cniChains().filter((c) => !chainsBefore.has(c));
      for (const c of made) spawnSync('iptables', ['-t', c.split(':')[0]!, '-F', c.split(':')[1]!], { stdio: 'ignore' });
      for (const table of ['nat', 'filter']) {
        const rules = spawnSync('iptables', ['-t', table, '-S'], { encoding: 'utf8' }).stdout ?? '';
        for (const line of rules.split('\n')) {
          // `iptables -S` quotes as a shell would (comments have spaces): let sh split it.
          if (/^-A \S+ .*-j CNI-/.test(line)) spawnSync('sh', ['-c', `iptables -t ${table} ${line.replace(/^-A /, '-D ')}`], { stdio: 'ignore' });
        }
      }
      for (const c of made) spawnSync('iptables', ['-t', c.split(':')[0]!, '-X', c.split(':')[1]!], { stdio: 'ignore' });
      cniDir.remove();
    },
    leftovers() {
      const found = containerd.leftovers();
      if (linkExists(bridge)) found.push(`link ${bridge} (the CNI bridge) in this network namespace`);
      for (const c of cniChains()) if (!chainsBefore.has(c)) found.push(`iptables chain ${c}`);
      if (existsSync(cniDir.path)) found.push(`directory ${cniDir.path}`);
      return found;
    },
  };
  try {
    await importArchive(containerd, PAUSE_REF, pause.archive, { namespace: CRI_NAMESPACE });
    await importBusybox(containerd, BUSYBOX_REF, { namespace: CRI_NAMESPACE });
  } catch (err) {
    await rig.stop();
    throw err;
  }
  return rig;
}
