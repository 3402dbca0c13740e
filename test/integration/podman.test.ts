// Debian's real podman 4.3.1 running containers in VM pods through bin/virtc-runtime: conmon,
// netavark and podman's own commands as a user runs them, on the podman rig
// (test/helpers/podman.ts, proved with runc by podman-rig.test.ts). Each `run` boots a QEMU pod
// (≈ 5 s), so the cases share containers where they can.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { liveProcesses } from '../helpers/containerd-host.js';
import { vmmProcessesUnder } from '../helpers/pods.js';
import { podmanProblem, startPodmanRig, type PodmanRig } from '../helpers/podman.js';
import { loadBusybox } from '../helpers/podman-image.js';
import type { RunResult } from '../helpers/rig-exec.js';
import { waitFor } from '../helpers/wait.js';

const BIN = join(process.cwd(), 'bin', 'virtc-runtime');
/** The runtime's default --root (podman passes runtimes none); the rig covers it with a private tmpfs. */
const RUNTIME_ROOT = '/run/virtc-runtime';
const MIB = 1024 * 1024;
const HOLDER_RSS_LIMIT = 10 * MIB;

const problem = podmanProblem();
let rig: PodmanRig | null = null;
let image = '';

const failText = (what: string, r: RunResult) => `${what}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`;
async function podmanOk(args: string[]): Promise<RunResult> {
  const r = await rig!.podman(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, failText(`podman ${args.join(' ')}`, r) + daemonLog());
  return r;
}
function daemonLog(): string {
  const r = spawnSync('nsenter', ['--target', String(rig!.holderPid), '--mount', 'tail', '-c', '2000', `${RUNTIME_ROOT}/daemon.log`], { encoding: 'utf8' });
  return `\ndaemon log: ${r.stdout || r.stderr}`;
}

/** Resident set size of a process, from /proc/PID/status (bytes). */
function rss(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}
/** This file's daemon: other tests (docker's) may run their own virtc-runtime daemons with other roots. */
const runtimeDaemons = () => liveProcesses().filter((p) => p.argv.includes(BIN) && p.argv.includes('daemon')
  && (p.argv.includes(RUNTIME_ROOT) || !p.argv.includes('--root')));
/** VMMs started by this rig's runtime: in its mount namespace (other tests' runtimes run VMs too). */
const rigVmms = () => vmmProcessesUnder('-').filter((pid) => {
  try { return readlinkSync(`/proc/${pid}/ns/mnt`) === rig!.mountNamespace; } catch { return false; }
});
const holdersOf = (id: string) => liveProcesses().filter((p) => p.argv[0]?.endsWith('vc-holder') && p.argv.includes(id));

if (problem) {
  test('podman on virtc-runtime: skipped', () => { console.log(`\nSKIP podman: ${problem}`); });
} else {
  test.before(async () => {
    // The daemon leaves this soon after its last container (default 10 s), so the last case sees it go.
    process.env.VIRTC_RUNTIME_IDLE_MS = '1500';
    try {
      rig = await startPodmanRig({ name: 'vm', runtimes: [BIN], runtime: 'virtc-runtime', privateDirs: [RUNTIME_ROOT] });
      image = await loadBusybox(rig);
    } catch (err) {
      console.log(`\nFAIL podman setup: ${(err as Error).message}`);
      throw err;
    }
    const { host, version } = rig.info;
    console.log(`# podman ${version.Version}: network ${host.networkBackend}, runtime ${host.ociRuntime?.name} (${host.ociRuntime?.path})`);
  });
  test.after(async () => { await rig?.stop(); });

  test('podman uses virtc-runtime', () => {
    assert.equal(rig!.info.host.ociRuntime?.name, 'virtc-runtime');
  });

  test('podman run --rm IMG echo hi prints hi, exit 0', async () => {
    const r = await podmanOk(['run', '--rm', image, 'echo', 'hi']);
    assert.equal(r.stdout, 'hi\n');
  });

  test("the container's exit code is podman's", async () => {
    const r = await rig!.podman(['run', '--rm', image, 'sh', '-c', 'exit 7'], { timeoutMs: 60_000 });
    assert.equal(r.code, 7, failText('podman run exit 7', r) + daemonLog());
  });

  test('-it gives the container a terminal', async () => {
    const r = await rig!.podman(['run', '--rm', '-it', image, 'sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty; tty'], { tty: true, timeoutMs: 60_000 });
    assert.equal(r.code, 0, failText('podman run -it', r) + daemonLog());
    // As under runc: the terminal is from the container's own devpts, so tty(1) names /dev/pts/N.
    assert.match(r.stdout, /^is-a-tty\r+\n\/dev\/pts\/\d+\r+\n$/, failText('podman run -it', r));
  });

  test('--network none: the guest has only lo', async () => {
    const r = await podmanOk(['run', '--rm', '--network', 'none', image, 'ls', '/sys/class/net']);
    assert.equal(r.stdout, 'lo\n');
  });

  test('-d on the default network: ps, exec, the guest kernel, the address podman gave, host memory, stop, rm', async () => {
    try {
      await detachedContainer();
    } finally {
      // A failure above must not leave the VM running behind the last case's checks.
      await rig!.podman(['rm', '--force', '--time', '0', '--ignore', 'vm1']);
    }
  });

  async function detachedContainer(): Promise<void> {
    const id = (await podmanOk(['run', '-d', '--name', 'vm1', image, 'sleep', '1000'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const ps = await podmanOk(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} vm1 Up`, 'm'));

    const exec = await rig!.podman(['exec', 'vm1', 'sh', '-c', 'echo from-exec; exit 3'], { timeoutMs: 30_000 });
    assert.equal(exec.code, 3, failText('podman exec', exec) + daemonLog());
    assert.equal(exec.stdout, 'from-exec\n');

    // The container runs on the guest's kernel, not the host's.
    const uname = (await podmanOk(['exec', 'vm1', 'uname', '-r'])).stdout.trim();
    assert.ok(uname.length > 0, 'uname -r printed something');
    assert.is.not(uname, release(), `the guest's kernel (${uname}) is not the host's (${release()})`);

    // netavark gave the container's namespace an address; the VM's eth0 carries it, and this namespace reaches it.
    const ip = (await podmanOk(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'vm1'])).stdout.trim();
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const inside = await podmanOk(['exec', 'vm1', 'ip', '-4', '-o', 'addr', 'show']);
    assert.ok(inside.stdout.includes(` ${ip}/`), `the guest has ${ip}: ${inside.stdout}`);
    const ping = spawnSync('busybox', ['ping', '-c', '1', '-W', '5', ip], { encoding: 'utf8' });
    assert.equal(ping.status, 0, `ping ${ip} from the test's namespace: ${ping.stdout}${ping.stderr}`);
    // A TCP connection into the guest: busybox nc listens there, this namespace connects.
    const listener = rig!.spawnPodman(['exec', 'vm1', 'sh', '-c', 'echo from-guest | nc -l -p 7777']);
    let served = '';
    for (let attempt = 0; attempt < 20 && !served; attempt++) {
      await new Promise((r) => setTimeout(r, 300));
      served = spawnSync('busybox', ['nc', '-w', '2', ip, '7777'], { encoding: 'utf8', input: '' }).stdout ?? '';
    }
    assert.equal(served, 'from-guest\n', `a TCP connection to ${ip}:7777`);
    // nc -l ends with its one connection, and so do the exec, its holder and podman exec.
    const listenerCode = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => { listener.kill('SIGKILL'); resolve(null); }, 10_000);
      listener.once('exit', (code) => { clearTimeout(timer); resolve(code); });
    });
    assert.equal(listenerCode, 0, 'podman exec ... nc -l exits 0 once served');

    // Host memory per container: the holder (conmon's child) is per container, the daemon per root.
    const holders = holdersOf(id).filter((h) => !h.argv.includes('--exec'));
    assert.equal(holders.length, 1, `one vc-holder for ${id}: ${JSON.stringify(holders.map((h) => [h.pid, ...h.argv]))}`);
    const daemons = runtimeDaemons();
    assert.equal(daemons.length, 1, `one virtc-runtime daemon: ${JSON.stringify(daemons.map((d) => [d.pid, ...d.argv]))}${daemonLog()}`);
    const holderRss = rss(holders[0]!.pid);
    const daemonRss = rss(daemons[0]!.pid);
    console.log(`\n# host memory with one -d container: vc-holder RSS ${(holderRss / MIB).toFixed(2)} MiB (per container), virtc-runtime daemon RSS ${(daemonRss / MIB).toFixed(1)} MiB (shared by the root's containers)`);
    assert.ok(holderRss <= HOLDER_RSS_LIMIT, `vc-holder RSS ${holderRss} bytes ≤ 10 MiB`);

    await podmanOk(['stop', '--time', '2', 'vm1']);
    const stopped = await podmanOk(['ps', '--all', '--format', '{{.Names}} {{.Status}}']);
    assert.match(stopped.stdout, /^vm1 Exited/m);
    await podmanOk(['rm', 'vm1']);
    assert.equal((await podmanOk(['ps', '--all', '--quiet'])).stdout, '');
  }

  test('afterwards: no VMM, no daemon, no pods under the runtime root; stop() leaves nothing', async () => {
    await waitFor('the virtc-runtime daemon to leave', () => runtimeDaemons().length === 0, 20_000).catch((err: Error) => {
      const left = runtimeDaemons().map((d) => `${d.pid} state ${readFileSync(`/proc/${d.pid}/stat`, "utf8").split(" ")[2]} ${d.argv.join(' ')}`);
      throw new Error(`${err.message}: ${JSON.stringify(left)}${daemonLog()}`);
    });
    assert.equal(rigVmms(), [], "no QEMU process in the rig's mount namespace");
    // <root>/pods is the API's root: its pods are in <root>/pods/pods; container records in <root>/containers.
    const tree = (await rig!.exec(['sh', '-c', `find ${RUNTIME_ROOT} -mindepth 1 -maxdepth 3 | sort`])).stdout;
    const left = tree.split('\n').filter((p) => /\/(pods\/pods|containers)\/[^/]+$/.test(p));
    assert.equal(left, [], `pods or container records left under ${RUNTIME_ROOT}:\n${tree}`);
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
  });
}

test.run();
