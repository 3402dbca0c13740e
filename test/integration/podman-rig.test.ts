// The podman test rig (test/helpers/podman.ts) proved with Debian's runc as the runtime: if these
// pass, a failure in the VM runtime's podman tests is the runtime's. Real podman, conmon, runc and
// netavark; the containers' mounts stay in the rig's mount namespace and their networks in this
// file's network namespace (scripts/test.js gives it one).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupHierarchies, liveProcesses, mountsAt } from '../helpers/containerd-host.js';
import { links } from '../helpers/network.js';
import { otherPodmanRigsRunning, podmanProblem, startPodmanRig, type PodmanRig } from '../helpers/podman.js';
import { loadBusybox } from '../helpers/podman-image.js';
import type { RunResult } from '../helpers/rig-exec.js';

const problem = podmanProblem();
let rig: PodmanRig | null = null;
let image = '';
const hostDirs = ['/run/netns', '/run/runc', '/run/containers', '/var/lib/containers'];
const hostDirState = () => hostDirs.map((d) => `${d}: ${existsSync(d) ? readdirSync(d).sort().join(',') || '(empty)' : 'absent'}`);
const hostDirsBefore = hostDirState();

const failText = (what: string, r: RunResult) => `${what}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`;
async function podmanOk(args: string[]): Promise<RunResult> {
  const r = await rig!.podman(args);
  assert.equal(r.code, 0, failText(`podman ${args.join(' ')}`, r));
  return r;
}

if (problem) {
  test('podman rig: skipped', () => { console.log(`\nSKIP podman-rig: ${problem}`); });
} else {
  test.before(async () => {
    // uvu counts a failing before hook as every test failed but prints nothing of it: say why here.
    try {
      rig = await startPodmanRig({ name: 'rig-test' });
      image = await loadBusybox(rig);
    } catch (err) {
      console.log(`\nFAIL podman-rig setup: ${(err as Error).message}`);
      throw err;
    }
    const { host, store, version } = rig.info;
    console.log(`# podman ${version.Version}: storage ${store.graphDriverName}, network ${host.networkBackend}, runtime ${host.ociRuntime?.name} (${host.ociRuntime?.path})`);
  });
  test.after(async () => { await rig?.stop(); });

  test('the rig runs what it configured: runc, cgroupfs, file events, its own storage', () => {
    const { host, store } = rig!.info;
    assert.equal(host.ociRuntime?.name, 'runc');
    assert.equal(host.cgroupManager, 'cgroupfs');
    assert.equal(host.eventLogger, 'file');
    assert.equal(host.networkBackend, 'netavark');
    assert.equal(store.graphDriverName, rig!.storageDriver);
    assert.equal(store.graphRoot, rig!.paths.root);
  });

  test('podman run --rm IMG echo hi prints hi', async () => {
    const r = await podmanOk(['run', '--rm', image, 'echo', 'hi']);
    assert.equal(r.stdout, 'hi\n');
  });

  test("the container's exit code is podman's; stdin reaches it with -i", async () => {
    const r = await rig!.podman(['run', '--rm', image, 'sh', '-c', 'exit 7']);
    assert.equal(r.code, 7, failText('podman run exit 7', r));
    const cat = await rig!.podman(['run', '--rm', '-i', image, 'cat'], { input: 'through stdin\n' });
    assert.equal(cat.stdout, 'through stdin\n', failText('podman run -i cat', cat));
  });

  test('-it gives the container a terminal', async () => {
    const r = await rig!.podman(['run', '--rm', '-it', image, 'tty'], { tty: true });
    assert.equal(r.code, 0, failText('podman run -it tty', r));
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r+\n$/);
  });

  test('-d, exec, ps, stop, rm; the container lives in the rig\'s cgroup parent and mount namespace', async () => {
    const id = (await podmanOk(['run', '-d', '--name', 'sleeper', image, 'sleep', '1000'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const exec = await rig!.podman(['exec', 'sleeper', 'sh', '-c', 'echo from-exec; ulimit -n; exit 3']);
    assert.equal(exec.code, 3, failText('podman exec', exec));
    assert.equal(exec.stdout, 'from-exec\n1024\n');
    const ps = await podmanOk(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} sleeper Up`, 'm'));
    const groups = cgroupHierarchies().filter((h) => existsSync(join(h, rig!.cgroupParent, `libpod-${id}`)));
    assert.ok(groups.length > 0, `a cgroup ${rig!.cgroupParent}/libpod-${id} in some hierarchy`);
    // The root filesystem is mounted in the rig's namespace only.
    const inRig = await rig!.exec(['sh', '-c', `grep -c ' ${rig!.paths.root}/' /proc/self/mountinfo || true`]);
    assert.ok(Number(inRig.stdout.trim()) > 0, failText("mounts under the storage root in the rig's namespace", inRig));
    assert.equal(mountsAt(rig!.dir), [], "no mount under the rig's directory in the host's mount namespace");
    await podmanOk(['stop', '--time', '1', 'sleeper']);
    const stopped = await podmanOk(['ps', '--all', '--format', '{{.Names}} {{.Status}}']);
    assert.match(stopped.stdout, /^sleeper Exited/m);
    await podmanOk(['rm', 'sleeper']);
    assert.equal((await podmanOk(['ps', '--all', '--quiet'])).stdout, '');
  });

  test('--runtime PATH: a container made so is managed by later commands without it', async () => {
    const runc = spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim();
    const echo = await podmanOk(['--runtime', runc, 'run', '--rm', image, 'echo', 'by-path']);
    assert.equal(echo.stdout, 'by-path\n');
    await podmanOk(['--runtime', runc, 'run', '-d', '--name', 'by-path', image, 'sleep', '1000']);
    assert.equal((await podmanOk(['inspect', '--format', '{{.OCIRuntime}}', 'by-path'])).stdout.trim(), runc);
    assert.match((await podmanOk(['ps', '--format', '{{.Names}} {{.Status}}'])).stdout, /^by-path Up/m);
    await podmanOk(['rm', '--force', '--time', '0', 'by-path']);
  });

  test('--network none: the container has only lo', async () => {
    const r = await podmanOk(['run', '--rm', '--network', 'none', image, 'ls', '/sys/class/net']);
    assert.equal(r.stdout, 'lo\n');
  });

  test("the default network: the container gets an address this namespace reaches; removal takes its veth", async () => {
    const before = new Set(links());
    await podmanOk(['run', '-d', '--name', 'pingable', image, 'sleep', '1000']);
    const ip = (await podmanOk(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', 'pingable'])).stdout.trim();
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const inside = await podmanOk(['exec', 'pingable', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    assert.ok(inside.stdout.includes(` ${ip}/`), `eth0 in the container has ${ip}: ${inside.stdout}`);
    const ping = spawnSync('busybox', ['ping', '-c', '1', '-W', '3', ip], { encoding: 'utf8' });
    assert.equal(ping.status, 0, `ping ${ip} from the test's namespace: ${ping.stdout}${ping.stderr}`);
    // The bridge (podman0) may stay for the next container; the container's own end of the veth may not.
    const added = () => links().filter((l) => !before.has(l) && l !== 'podman0');
    assert.equal(added().length, 1, `one veth for the container: new links ${added().join(', ')}`);
    await podmanOk(['rm', '--force', '--time', '0', 'pingable']);
    assert.equal(added(), [], 'the veth is gone');
  });

  test("stop() kills a running container and conmon and leaves nothing; the host's /run/netns, /run/runc, /run/containers and /var/lib/containers are untouched", async () => {
    await podmanOk(['run', '-d', '--name', 'left-running', image, 'sleep', '1000']);
    const conmons = liveProcesses().filter((p) => p.argv[0]?.endsWith('conmon') && p.argv.some((a) => a.startsWith(`${rig!.dir}/`)));
    assert.equal(conmons.length, 1, `one conmon for the rig's container, found ${JSON.stringify(conmons.map((c) => c.argv.slice(0, 6)))}`);
    assert.ok(rig!.leftovers().length > 0, 'leftovers() sees the running rig');
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
    assert.equal(liveProcesses().filter((p) => conmons.some((c) => c.pid === p.pid)), [], 'conmon is gone');
    // Another process's rig makes and removes them too.
    if (otherPodmanRigsRunning(rig!.dir)) console.log('\nNOTE podman-rig: another podman rig runs, so the mount points of its private directories are not compared before/after');
    else assert.equal(hostDirState(), hostDirsBefore);
    const after = await rig!.podman(['ps']).then(() => 'ran', (err: Error) => err.message);
    assert.match(after, /not running/);
  });
}

test.run();
