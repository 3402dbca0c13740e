// The docker test rig (test/helpers/docker.ts) proved with runc, docker's default runtime, as the
// control: if these pass, a failure of the same commands with `--runtime virtc` is virtc-runtime's.
// Real dockerd and client (Debian's docker.io 20.10), real containerd and runc.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER_CLIENT, dockerProblem, startDockerRig, type DockerRig } from '../helpers/docker.js';
import { loadBusybox } from '../helpers/docker-image.js';
import { liveProcesses } from '../helpers/containerd-host.js';
import { tempDir } from '../helpers/tmp.js';

const problem = dockerProblem();
const etcDocker = () => (existsSync('/etc/docker') ? readdirSync('/etc/docker').sort().join(',') : 'absent');
const etcDockerBefore = etcDocker();
let rig: DockerRig | null = null;
let image = '';
// A runtime added with --add-runtime, as virtc-runtime will be: runc behind a wrapper that logs
// each command line, so the test sees what docker's shim hands a runc-compatible runtime.
const wrapDir = tempDir('vcdkrt');
const wrapLog = join(wrapDir.path, 'calls');
const wrapper = join(wrapDir.path, 'logging-runc');

const failText = (what: string, r: { code: number; stdout: string; stderr: string }) =>
  `${what}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}\ndockerd log (end):\n${rig?.logs().slice(-3000)}`;

if (problem) {
  test('docker rig: skipped', () => { console.log(`\nSKIP docker-rig: ${problem}`); });
} else {
  test.before(async () => {
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${wrapLog}'\nexec runc "$@"\n`);
    chmodSync(wrapper, 0o755);
    rig = await startDockerRig({ name: 'rig-test', runtimes: { logged: wrapper } });
    image = await loadBusybox(rig);
  });
  test.after(async () => {
    await rig?.stop();
    wrapDir.remove();
  });

  test(`the client is Debian's ${DOCKER_CLIENT} and the daemon the same 20.10`, async () => {
    const r = await rig!.docker(['version', '--format', '{{.Client.Version}} {{.Server.Version}}']);
    assert.equal(r.code, 0, failText('docker version', r));
    assert.match(r.stdout, /^20\.10\.\S+ 20\.10\.\S+\n$/);
  });

  test('docker run --rm IMG echo hi prints hi; the ulimits are the rig\'s', async () => {
    const r = await rig!.docker(['run', '--rm', image, 'echo', 'hi']);
    assert.equal(r.code, 0, failText('docker run echo hi', r));
    assert.equal(r.stdout, 'hi\n');
    const limits = await rig!.docker(['run', '--rm', image, 'sh', '-c', 'ulimit -n; ulimit -u']);
    assert.equal(limits.stdout, '1024\n1024\n', failText('docker run ulimit', limits));
  });

  test("a container's exit code is docker run's", async () => {
    const r = await rig!.docker(['run', '--rm', image, 'sh', '-c', 'exit 7']);
    assert.equal(r.code, 7, failText('docker run exit 7', r));
  });

  test('-i passes stdin through; -it gives a terminal', async () => {
    const read = await rig!.docker(['run', '--rm', '-i', image, 'sh', '-c', 'read line; echo "got $line"'], { input: 'through stdin\n' });
    assert.equal(read.stdout, 'got through stdin\n', failText('docker run -i read', read));
    const tty = await rig!.docker(['run', '--rm', '-it', image, 'sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty'], { tty: true });
    assert.equal(tty.code, 0, failText('docker run -it', tty));
    assert.match(tty.stdout, /is-a-tty\r+\n$/);
  });

  test('-d, then exec, ps, stop and rm', async () => {
    const run = await rig!.docker(['run', '-d', '--name', 'sleeper', image, 'sleep', '1000']);
    assert.equal(run.code, 0, failText('docker run -d', run));
    const id = run.stdout.trim();
    const ps = await rig!.docker(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} sleeper Up `), failText('docker ps', ps));
    const exec = await rig!.docker(['exec', 'sleeper', 'sh', '-c', 'echo in $(hostname); exit 3']);
    assert.equal(exec.code, 3, failText('docker exec', exec));
    assert.equal(exec.stdout, `in ${id.slice(0, 12)}\n`);
    // sleep as pid 1 ignores SIGTERM: stop's SIGKILL after -t ends it.
    const stop = await rig!.docker(['stop', '--time', '1', 'sleeper']);
    assert.equal(stop.code, 0, failText('docker stop', stop));
    const state = await rig!.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'sleeper']);
    assert.equal(state.stdout, 'exited 137\n', failText('docker inspect', state));
    const rm = await rig!.docker(['rm', 'sleeper']);
    assert.equal(rm.code, 0, failText('docker rm', rm));
    const all = await rig!.docker(['ps', '--all', '--quiet']);
    assert.equal(all.stdout, '');
  });

  test('--runtime NAME runs the binary given to --add-runtime, with runc\'s command line', async () => {
    const r = await rig!.docker(['run', '--rm', '--runtime', 'logged', image, 'echo', 'wrapped']);
    assert.equal(r.code, 0, failText('docker run --runtime logged', r));
    assert.equal(r.stdout, 'wrapped\n');
    const calls = readFileSync(wrapLog, 'utf8');
    assert.match(calls, /(^|\n)--root \S+ --log \S+ --log-format json create --bundle \S+ --pid-file \S+ [0-9a-f]{64}\n/, calls);
    assert.match(calls, /(^|\n)--root \S+ --log \S+ --log-format json start [0-9a-f]{64}\n/, calls);
  });

  test('--network none: loopback only', async () => {
    const r = await rig!.docker(['run', '--rm', '--network', 'none', image, 'ls', '/sys/class/net']);
    assert.equal(r.code, 0, failText('docker run --network none', r));
    assert.equal(r.stdout.split(/\s+/).filter(Boolean), ['lo']);
  });

  // A bridge network of the rig's dockerd: its bridge and veths are in the namespace dockerd runs in,
  // so only where that is the test's own (scripts/test.js runs this file under `unshare --net`:
  // loopback only).
  test('a network the test makes: an address on it, and a container reaches another by name', async () => {
    const devices = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean);
    if (devices.some((d) => d !== 'lo')) {
      console.log(`\nNOTE docker-rig: not in a network namespace of its own (devices ${devices.join(', ')}), so no bridge network is made`);
      return;
    }
    const net = await rig!.docker(['network', 'create', '--subnet', '10.199.0.0/24', 'rig-net']);
    assert.equal(net.code, 0, failText('docker network create', net));
    const addr = await rig!.docker(['run', '--rm', '--network', 'rig-net', image, 'sh', '-c', 'ip -4 -o addr show eth0']);
    assert.match(addr.stdout, /inet 10\.199\.0\.\d+\/24/, failText('ip addr on rig-net', addr));
    const srv = await rig!.docker(['run', '-d', '--network', 'rig-net', '--name', 'srv', image, 'nc', '-l', '-p', '8080', '-e', 'echo', 'pong']);
    assert.equal(srv.code, 0, failText('docker run -d nc -l', srv));
    const client = await rig!.docker(['run', '--rm', '--network', 'rig-net', image, 'sh', '-c',
      'for i in 1 2 3 4 5 6 7 8 9 10; do nc srv 8080 </dev/null && exit 0; sleep 0.2; done; exit 1']);
    assert.equal(client.stdout, 'pong\n', failText('nc srv 8080', client));
    // Left running, with the network: stop() removes both.
  });

  test('stop() with a running container leaves nothing; /etc/docker is untouched', async () => {
    const r = await rig!.docker(['run', '-d', image, 'sleep', '1000']);
    assert.equal(r.code, 0, failText('docker run -d', r));
    const shims = liveProcesses().filter((p) => p.argv[0]?.endsWith('containerd-shim-runc-v2') && p.argv.includes(rig!.containerd.address));
    assert.equal(shims.length, 1, `one runc shim for the rig's containerd, found ${JSON.stringify(shims.map((s) => s.argv))}`);
    assert.equal(rig!.leftovers().length > 0, true, 'leftovers() sees the running dockerd');
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
    assert.equal(liveProcesses().filter((p) => p.pid === rig!.pid || shims.some((s) => s.pid === p.pid)), [], 'dockerd and the shim are gone');
    assert.equal(etcDocker(), etcDockerBefore, '/etc/docker (the trust key goes to the rig\'s directory)');
    const after = await rig!.docker(['ps']).then(() => 'ran', (err: Error) => err.message);
    assert.match(after, /not running/);
  });
}

test.run();
