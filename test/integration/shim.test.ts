// vc-test: judges-speed
// containerd-shim-virtc-v2 under the real containerd and ctr (test/helpers/containerd.ts: a private
// containerd in its own mount namespace): every task a container in a VM pod. QEMU here; the
// nested wrapper (test/nested/kvm-shim.test.ts) runs the same file on the built-in VMM in L1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerdProblem, startContainerd, type Containerd, type CtrResult } from '../helpers/containerd.js';
import { importBusybox } from '../helpers/containerd-image.js';
import { liveProcesses } from '../helpers/containerd-host.js';
import { testHypervisor } from '../helpers/hypervisor.js';
import { tempDir } from '../helpers/tmp.js';
import { TtrpcClient } from '../../src/shim/ttrpc/client.js';
import { serviceStub } from '../../src/shim/ttrpc/typed.js';
import { TASK_SERVICE, type TaskMethods } from '../../src/shim/proto/task.js';
import { shimSocketPath } from '../../src/shim/address.js';
import { sleep, waitFor } from '../helpers/wait.js';

const RUNTIME = 'io.containerd.virtc.v2';
const binDir = join(process.cwd(), 'bin');
const problem = containerdProblem();
const state = tempDir('vcshim');
let rig: Containerd | null = null;
let image = '';
/** Every event containerd published, as `ctr events` prints them: topic and JSON body. */
const events: Array<{ topic: string; body: Record<string, unknown> }> = [];

function collectEvents(): void {
  const child = rig!.spawnCtr(['events']);
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      // TIMESTAMP (4 words) NAMESPACE TOPIC JSON
      const m = / (\/tasks\/\S+) (\{.*\})$/.exec(line);
      if (m) events.push({ topic: m[1]!, body: JSON.parse(m[2]!) as Record<string, unknown> });
    }
  });
}

/** The topics of one task's events (its execs' too), in the order containerd got them. */
const topicsOf = (id: string): string[] => events.filter((e) => e.body.container_id === id).map((e) => e.topic);

/** The exit status of a task (or one of its execs) from its /tasks/exit event, once it comes. */
async function exitStatus(id: string, execId = id, timeoutMs = 30_000): Promise<number> {
  const find = () => events.find((e) => e.topic === '/tasks/exit' && e.body.container_id === id && e.body.id === execId);
  await waitFor(`the exit event of ${id}/${execId}`, () => find() !== undefined, timeoutMs);
  return Number(find()!.body.exit_status ?? 0);
}

const podsDir = (): string => join(state.path, 'containerd', 'vc-test', 'pods');
const pods = (): string[] => (existsSync(podsDir()) ? readdirSync(podsDir()).filter((n) => !n.startsWith('.')) : []);
const shims = () => liveProcesses().filter((p) => p.argv.some((a) => a.endsWith('containerd-shim-virtc-v2')) && p.argv.includes(rig!.address));
const vmms = () => liveProcesses().filter((p) => /qemu-system|vc-vmm/.test(p.argv[0] ?? '') && p.argv.some((a) => a.includes(state.path)));

function explain(what: string, r: CtrResult): string {
  return `${what}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}\ncontainerd log (end):\n${rig?.logs().slice(-4000)}`;
}

/** `ctr run` with our runtime on the hypervisor under test. */
function run(args: string[], opts: Parameters<Containerd['ctr']>[1] = {}): Promise<CtrResult> {
  return rig!.ctr(['run', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`, ...args], { timeoutMs: 120_000, ...opts });
}

async function ctrOk(args: string[], opts: Parameters<Containerd['ctr']>[1] = {}): Promise<CtrResult> {
  const r = await rig!.ctr(args, { timeoutMs: 60_000, ...opts });
  assert.equal(r.code, 0, explain(`ctr ${args.join(' ')}`, r));
  return r;
}

async function taskStatus(id: string): Promise<string> {
  const r = await ctrOk(['task', 'ls']);
  const line = r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
  return line?.split(/\s+/)[2] ?? 'absent';
}

async function removeTask(id: string): Promise<void> {
  await rig!.ctr(['task', 'delete', '--force', id], { timeoutMs: 60_000 });
  await ctrOk(['containers', 'delete', id]);
}

/** In L1 (test/nested/kvm-shim.test.ts) only the VMM-dependent core runs; each other case says so. */
const L1_CORE = ['ctr run --rm', 'ctr task exec', 'the VMM killed', 'nothing is left'];
function shimTest(name: string, body: () => Promise<void>): void {
  if (process.env.VC_NESTED_L1 && !L1_CORE.some((prefix) => name.startsWith(prefix))) {
    test(name, () => { console.log(`\nSKIP in L1 "${name}": hypervisor-independent, runs on QEMU in L0 (L1 boots a pod in ~30 s)`); });
  } else {
    test(name, body);
  }
}

if (problem) {
  test('containerd shim: skipped', () => { console.log(`\nSKIP containerd shim tests: ${problem}`); });
} else {
  test.before(async () => {
    process.env.VC_ROOT = state.path;
    rig = await startContainerd({ name: 'shim', shimPath: [binDir] });
    image = await importBusybox(rig);
    collectEvents();
  });
  test.after(async () => {
    await rig?.stop();
    state.remove();
  });

  shimTest('ctr run --rm: output, the exit code (7) and the guest kernel; nothing left', async () => {
    const r = await run(['--rm', image, 'exit7', 'sh', '-c', 'echo out; echo err >&2; uname -r; exit 7']);
    assert.equal(r.code, 7, explain('ctr run exit 7', r));
    const [out, release] = r.stdout.trim().split('\n');
    assert.equal(out, 'out');
    assert.not.equal(release, (await import('node:os')).release(), 'uname -r answered by the guest kernel, not the host');
    assert.match(r.stderr, /^err\n/);
    assert.equal(pods(), [], 'the pod is gone');
    await waitFor('the shim to exit', () => shims().length === 0, 10_000);
    assert.equal(vmms(), []);
  });

  shimTest("containerd's default spec is in effect: capabilities, no_new_privs, masked paths; --seccomp blocks unshare", async () => {
    const r = await run(['--rm', '--seccomp', image, 'confined', 'sh', '-c',
      'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; wc -c < /proc/kcore; unshare -U true && echo unshare-ran || echo unshare-refused']);
    assert.equal(r.code, 0, explain('ctr run --seccomp', r));
    const status = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes(':')).map((l) => l.split(/:\s+/)));
    // containerd's default set: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
    // SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
    assert.equal(status.CapEff, '00000000a80425fb', r.stdout);
    assert.equal(status.CapBnd, '00000000a80425fb');
    assert.equal(status.NoNewPrivs, '1');
    assert.equal(status.Seccomp, '2');
    assert.match(r.stdout, /^0$/m, '/proc/kcore is masked (empty)');
    assert.match(r.stdout, /unshare-refused/);
    assert.match(r.stderr, /unshare: .*(Operation not permitted|EPERM)/i);
    const plain = await run(['--rm', image, 'unconfined', 'sh', '-c', 'grep ^Seccomp: /proc/self/status; unshare -U true && echo unshare-ran']);
    assert.match(plain.stdout, /Seccomp:\s+0/, explain('ctr run without --seccomp', plain));
  });

  shimTest('stdin piped reaches the task; -t gives it a terminal', async () => {
    const read = await run(['--rm', image, 'stdin', 'sh', '-c', 'read a; read b; echo "got $a $b"'], { input: 'one\ntwo\n' });
    assert.equal(read.stdout, 'got one two\n', explain('ctr run read', read));
    const tty = await run(['--rm', '-t', image, 'tty', 'sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty; exit 3'], { tty: true });
    assert.equal(tty.code, 3, explain('ctr run -t', tty));
    assert.match(tty.stdout, /is-a-tty\r+\n/);
  });

  shimTest('ctr task exec (plain and -t), kill with SIGTERM (trapped) and SIGKILL', async () => {
    await ctrOk(['run', '-d', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`, image, 'longrun',
      'sh', '-c', 'trap "exit 5" TERM; while true; do sleep 0.2; done'], { timeoutMs: 120_000 });
    assert.equal(await taskStatus('longrun'), 'RUNNING');
    const plain = await rig!.ctr(['task', 'exec', '--exec-id', 'x1', 'longrun', 'sh', '-c', 'echo exec-out; echo exec-err >&2; exit 4']);
    assert.equal(plain.code, 4, explain('ctr task exec', plain));
    assert.equal(plain.stdout, 'exec-out\n');
    assert.equal(plain.stderr, 'exec-err\n');
    const viaStdin = await rig!.ctr(['task', 'exec', '--exec-id', 'x2', 'longrun', 'sh', '-c', 'cat | wc -c'], { input: 'twelve bytes' });
    assert.equal(viaStdin.stdout.trim(), '12', explain('ctr task exec with stdin (CloseIO ends it)', viaStdin));
    const tty = await rig!.ctr(['task', 'exec', '-t', '--exec-id', 'x3', 'longrun', 'sh', '-c', 'test -t 1 && echo exec-tty'], { tty: true });
    assert.equal(tty.code, 0, explain('ctr task exec -t', tty));
    assert.match(tty.stdout, /exec-tty/);
    await ctrOk(['task', 'kill', 'longrun']);
    assert.equal(await exitStatus('longrun'), 5, 'the trap ran and exited 5');
    assert.equal(await taskStatus('longrun'), 'STOPPED');
    await ctrOk(['task', 'delete', 'longrun']);
    await ctrOk(['containers', 'delete', 'longrun']);
    assert.equal(topicsOf('longrun'), [
      '/tasks/create', '/tasks/start',
      ...['x1', 'x2', 'x3'].flatMap(() => ['/tasks/exec-added', '/tasks/exec-started', '/tasks/exit']),
      '/tasks/exit', '/tasks/delete',
    ], 'events in order');

    await ctrOk(['run', '-d', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`, image, 'killme', 'sleep', '1000'], { timeoutMs: 120_000 });
    await ctrOk(['task', 'kill', '-s', 'SIGKILL', 'killme']);
    assert.equal(await exitStatus('killme'), 137, '128 + SIGKILL');
    await removeTask('killme');
    assert.equal(pods(), []);
  });

  shimTest('ctr task ps, pause/resume, metrics, update; a bind mount copied in read-only', async () => {
    const host = tempDir('vcshim-bind');
    writeFileSync(join(host.path, 'greeting'), 'hello from the host\n');
    mkdirSync(join(host.path, 'sub'));
    writeFileSync(join(host.path, 'sub', 'deep'), 'deep file\n');
    try {
      await ctrOk(['run', '-d', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`,
        '--mount', `type=bind,src=${host.path},dst=/data,options=rbind:ro`, image, 'ops',
        'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'], { timeoutMs: 120_000 });
      const cat = await ctrOk(['task', 'exec', '--exec-id', 'c1', 'ops', 'sh', '-c', 'cat /data/greeting /data/sub/deep; touch /data/new 2>&1 || echo read-only']);
      assert.match(cat.stdout, /^hello from the host\ndeep file\n/);
      assert.match(cat.stdout, /read-only/);
      // A file changed on the host reaches the running container within 2 s (the shim's watcher).
      writeFileSync(join(host.path, 'greeting'), 'changed on the host\n');
      await sleep(2500);
      const again = await ctrOk(['task', 'exec', '--exec-id', 'c2', 'ops', 'cat', '/data/greeting']);
      assert.equal(again.stdout, 'changed on the host\n');

      const ps = await ctrOk(['task', 'ps', 'ops']);
      const pids = ps.stdout.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
      assert.ok(pids.length >= 1 && pids.every((p) => p > 0), ps.stdout);

      await ctrOk(['task', 'pause', 'ops']);
      assert.equal(await taskStatus('ops'), 'PAUSED');
      const count = async (exec: string) => Number((await ctrOk(['task', 'exec', '--exec-id', exec, 'ops', 'cat', '/tmp/count'])).stdout.trim());
      await ctrOk(['task', 'resume', 'ops']);
      assert.equal(await taskStatus('ops'), 'RUNNING');
      const before = await count('n1');
      await sleep(1000);
      assert.ok((await count('n2')) > before, 'the loop runs again after resume');
      assert.equal(topicsOf('ops').filter((t) => t === '/tasks/paused' || t === '/tasks/resumed'), ['/tasks/paused', '/tasks/resumed']);

      const metrics = await ctrOk(['task', 'metrics', '--format', 'json', 'ops']);
      // ctr prints the Metrics message (io.containerd.cgroups.v2) as JSON, zero fields left out.
      const m = JSON.parse(metrics.stdout) as { memory?: { usage?: number; anon?: number }; cpu?: { usage_usec?: number }; pids?: { current?: number } };
      assert.ok((m.memory?.usage ?? 0) > 0 && (m.memory?.anon ?? 0) > 0, metrics.stdout.slice(0, 400));
      assert.ok((m.cpu?.usage_usec ?? 0) > 0);
      assert.ok((m.pids?.current ?? 0) >= 2);

      // ctr 1.6 has no `task update`: call the shim's Update as containerd would, through the
      // socket in containerd's mount namespace (reached by the shim's /proc/PID/root).
      const [shim] = shims().filter((p) => p.argv.includes('ops'));
      const client = await TtrpcClient.connect(`/proc/${shim!.pid}/root${shimSocketPath(rig!.address, rig!.namespace, 'ops')}`);
      try {
        const task = serviceStub<TaskMethods>(client, TASK_SERVICE);
        await task.Update({ id: 'ops', resources: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify({ memory: { limit: 64 * 1024 * 1024 } })) } });
      } finally {
        client.close();
      }
      const after = JSON.parse((await ctrOk(['task', 'metrics', '--format', 'json', 'ops'])).stdout) as { memory?: { usage_limit?: number | string } };
      assert.equal(Number(after.memory?.usage_limit), 64 * 1024 * 1024, 'the guest cgroup has the new limit');
      assert.not.equal(Number(m.memory && (m.memory as { usage_limit?: number }).usage_limit), 64 * 1024 * 1024, 'and did not before');
    } finally {
      await removeTask('ops');
      host.remove();
    }
  });

  shimTest('what a task writes into a writable bind mount is on the host once it exits', async () => {
    const out = tempDir('vcshim-out');
    try {
      const r = await run(['--rm', '--mount', `type=bind,src=${out.path},dst=/out,options=rbind:rw`, image, 'writer',
        'sh', '-c', 'mkdir -p /out/sub && echo result > /out/sub/file && echo done > /out/last; exit 2']);
      assert.equal(r.code, 2, explain('ctr run writer', r));
      assert.equal(readFileSync(join(out.path, 'sub', 'file'), 'utf8'), 'result\n');
      assert.equal(readFileSync(join(out.path, 'last'), 'utf8'), 'done\n');
    } finally {
      out.remove();
    }
  });

  shimTest('a task over its memory limit is OOM-killed: /tasks/oom, then exit 137', async () => {
    const r = await run(['--rm', '--memory-limit', String(16 * 1024 * 1024), image, 'oom', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    assert.equal(r.code, 137, explain('ctr run dd bs=64M under a 16 MiB limit', r));
    assert.equal(topicsOf('oom').slice(-4), ['/tasks/start', '/tasks/oom', '/tasks/exit', '/tasks/delete']);
  });

  shimTest("the spec's network namespace is the pod's: a veth the test made, reachable from the container", async () => {
    // The namespace file is made inside containerd's mount namespace (a bind mount made in ours
    // after it started would not show there); the veth's other end stays in this test's namespace.
    const nsFile = join(rig!.dir, 'task-netns');
    const inRig = async (cmd: string) => {
      const r = await rig!.exec(['sh', '-c', cmd]);
      assert.equal(r.code, 0, explain(cmd, r));
      return r.stdout;
    };
    await inRig(`: > ${nsFile} && unshare --net=${nsFile} true && nsenter --net=${nsFile} ip link set lo up`);
    try {
      await inRig(`ip link add vshim0 type veth peer name vshimpod && ip link set vshimpod netns ${nsFile} && ip addr add 192.168.78.1/24 dev vshim0 && ip link set vshim0 up`);
      await inRig(`nsenter --net=${nsFile} sh -c 'ip addr add 192.168.78.2/24 dev vshimpod && ip link set vshimpod up'`);
      const r = await run(['--rm', '--with-ns', `network:${nsFile}`, image, 'netpod', 'sh', '-c', 'ip -o -4 addr show; ping -c 1 -W 5 192.168.78.1']);
      assert.equal(r.code, 0, explain('ctr run --with-ns network:…', r));
      assert.match(r.stdout, /192\.168\.78\.2\/24/, 'the veth\'s address is the container\'s');
      assert.match(r.stdout, /1 packets received/);
      const left = await inRig(`nsenter --net=${nsFile} ip -o link show`);
      assert.not.match(left, /tap\d+_vc/, 'the pod\'s tap went with it');
    } finally {
      await rig!.exec(['sh', '-c', `ip link del vshim0; umount ${nsFile}; rm -f ${nsFile}`]);
    }
  });

  shimTest('two containers of one sandbox (CRI annotations) run in one VM under one shim', async () => {
    const sandbox = ['--annotation', 'io.kubernetes.cri.container-type=sandbox'];
    const member = ['--annotation', 'io.kubernetes.cri.container-type=container', '--annotation', 'io.kubernetes.cri.sandbox-id=sb1'];
    await ctrOk(['run', '-d', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`, ...sandbox, image, 'sb1', 'sleep', '1000'], { timeoutMs: 120_000 });
    await ctrOk(['run', '-d', '--runtime', RUNTIME, ...member, image, 'sb1-c1', 'sleep', '1000'], { timeoutMs: 120_000 });
    assert.equal(pods(), ['sb1'], 'one pod');
    assert.equal(shims().length, 1, 'one shim');
    assert.equal(vmms().length, 1, 'one VMM');
    const boot = async (id: string, exec: string) => (await ctrOk(['task', 'exec', '--exec-id', exec, id, 'cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim();
    assert.equal(await boot('sb1', 'b1'), await boot('sb1-c1', 'b2'), 'the same kernel answers both');
    const mntA = (await ctrOk(['task', 'exec', '--exec-id', 'm1', 'sb1', 'readlink', '/proc/self/ns/mnt'])).stdout;
    const mntB = (await ctrOk(['task', 'exec', '--exec-id', 'm2', 'sb1-c1', 'readlink', '/proc/self/ns/mnt'])).stdout;
    assert.not.equal(mntA, mntB, 'separate mount namespaces');
    await removeTask('sb1-c1');
    assert.equal(vmms().length, 1, 'the sandbox VM stays while the sandbox runs');
    await removeTask('sb1');
    assert.equal(pods(), []);
    await waitFor('the shim to exit', () => shims().length === 0, 10_000);
  });

  shimTest('the VMM killed: the task exits (255) and can be deleted', async () => {
    await ctrOk(['run', '-d', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`, image, 'vmdies', 'sleep', '1000'], { timeoutMs: 120_000 });
    const [vmm] = vmms();
    assert.ok(vmm, 'a VMM runs');
    process.kill(vmm!.pid, 'SIGKILL');
    assert.equal(await exitStatus('vmdies'), 255);
    assert.equal(await taskStatus('vmdies'), 'STOPPED');
    await removeTask('vmdies');
    assert.equal(pods(), []);
  });

  shimTest("the shim killed: containerd's delete cleans up the pod", async () => {
    await ctrOk(['run', '-d', '--runtime', RUNTIME, '--annotation', `io.virtcontainers.pod.hypervisor=${testHypervisor}`, image, 'shimdies', 'sleep', '1000'], { timeoutMs: 120_000 });
    const [shim] = shims();
    assert.ok(shim, 'a shim runs');
    assert.equal(pods(), ['shimdies']);
    process.kill(shim!.pid, 'SIGKILL');
    await waitFor('containerd to clean up after the dead shim', () => pods().length === 0 && vmms().length === 0 && shims().length === 0, 30_000);
    // containerd publishes the exit our `delete` answered (a SIGKILLed task) and forgets the task.
    assert.equal(await exitStatus('shimdies'), 137);
    assert.equal(await taskStatus('shimdies'), 'absent');
    await ctrOk(['containers', 'delete', 'shimdies']);
  });

  shimTest('nothing is left: no pod, shim, VMM', async () => {
    assert.equal(pods(), []);
    assert.equal(shims(), []);
    assert.equal(vmms(), []);
  });
}

test.run();
