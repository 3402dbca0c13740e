// vc-vmm's jail on real kvm pods (docs/vmm.md "Jail"), inside the nested-KVM harness's L1: a pod's
// VMM runs in its own mount/pid/ipc/uts/cgroup namespaces (its network namespace and cgroup are the
// pod's, as without the jail), sees only its jail root, runs as the jail uid with no privileges
// and no_new_privs, with the jail's rlimits, only the fds of its VM and an empty environment; the
// guest works through it; and a VMM crash leaves no mount, only the empty jail directory, which
// delete --force removes. The jail step itself, without KVM: test/native/vmm-jail.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createPod, deletePod, enterPod, startPod } from '../../src/index.js';
import { waitForExit } from '../../src/host/process.js';
import { imagesDirOf } from '../../src/guest/image/index.js';
import { leftovers } from '../helpers/leaks.js';
import { readAll, teardownRoot } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('vcjail');
const root = tmp.path;
const problem = process.getuid?.() !== 0 ? 'needs root (the jail is on by default only for root)'
  : process.env.VC_VMM_JAIL === '0' || process.env.VC_VMM_JAIL === 'off' ? 'VC_VMM_JAIL turns the jail off' : null;

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

function hostMountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${prefix}/`));
}

// What a jailed VMM may hold: its stdio (/dev/null, the log), the console file, KVM's fds, the
// event plumbing of its devices, and its listening and connected sockets.
const EXPECTED_FD = [
  /^\/dev\/null$/, /\/vmm\.log$/, /\/console\.log$/, /^\/dev\/kvm$/, /^anon_inode:kvm-(vm|vcpu:\d+)$/,
  /^anon_inode:\[(eventfd|eventpoll|signalfd|timerfd)\]$/, /^socket:\[\d+\]$/,
];

async function startJailedPod(id: string): Promise<number> {
  await createPod({ id, hypervisor: 'kvm', memoryMiB: 256, network: 'none' }, { root });
  const started = await startPod(id, { root });
  assert.ok(started.pid, 'the pod runs');
  return started.pid!;
}

if (problem) {
  test('kvm jail: skipped', () => { console.log(`\nSKIP kvm-jail: ${problem}`); });
} else {
  test('a kvm pod\'s VMM is jailed, its guest works through it, and after a crash delete --force leaves nothing', async () => {
    const pid = await startJailedPod('jailed');
    const proc = `/proc/${pid}`;
    for (const ns of ['mnt', 'pid', 'ipc', 'uts', 'cgroup']) {
      assert.is.not(readlinkSync(`${proc}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `the VMM's ${ns} namespace is not the host's`);
    }
    // Its root: the path down to the image cache (where attached disks come from), nothing else.
    const images = imagesDirOf();
    assert.equal(readdirSync(`${proc}/root`), [images.split('/')[1]]);
    assert.ok(existsSync(`${proc}/root${images}`), `${images} is in the jail`);
    assert.not.ok(existsSync(`${proc}/root/dev`) || existsSync(`${proc}/root${root}`), 'no /dev, no pod directory');
    const status = readFileSync(`${proc}/status`, 'utf8');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    assert.match(status, /^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    const limits = readFileSync(`${proc}/limits`, 'utf8');
    assert.match(limits, /^Max core file size\s+0\s+0\s/m);
    assert.match(limits, /^Max file size\s+1073741824\s+1073741824\s/m);
    assert.match(limits, /^Max open files\s+4096\s+4096\s/m);
    assert.match(limits, /^Max processes\s+0\s+0\s/m);
    const fds = readdirSync(`${proc}/fd`).map((fd) => `${fd} -> ${readlinkSync(`${proc}/fd/${fd}`)}`);
    const unexpected = fds.filter((line) => !EXPECTED_FD.some((re) => re.test(line.split(' -> ')[1]!)));
    assert.equal(unexpected, [], `every fd is one of the VM's: ${fds.join(', ')}`);
    // Blanked, and cut to nothing where the VMM has CAP_SYS_RESOURCE (a container may withhold it).
    assert.equal(readFileSync(`${proc}/environ`, 'latin1').split('\0').filter(Boolean), [], 'the environment is empty');
    assert.equal(hostMountsUnder(root), [], 'the jail\'s mounts are not the host\'s');
    assert.equal(readdirSync(`${root}/pods/jailed/vmm-root`), [], 'the host sees the jail root empty');

    // The agent answers through the jailed VMM's vsock.
    const p = await enterPod('jailed', ['sh', '-c', 'echo jailed-ok'], { root });
    const [out, st] = await Promise.all([readAll(p.stdout), p.wait()]);
    assert.equal([out.trim(), st.exitCode], ['jailed-ok', 0]);

    // A crash (one pod boot is ≈ 30 s in L1, so the same pod): only the empty jail root is left,
    // and delete --force removes it with the rest. A forced delete of a running jailed pod, and
    // crashes at every step of a start, are in kvm-crash-lifecycle/kvm-crash-running.
    process.kill(pid, 'SIGKILL');
    assert.ok(await waitForExit(pid, 5000), 'the VMM died');
    assert.equal(hostMountsUnder(root), []);
    assert.equal(readdirSync(`${root}/pods/jailed/vmm-root`), [], 'the jail root is there, empty');
    await deletePod('jailed', { root, force: true });
    assert.equal(leftovers(root, 'jailed'), [], 'nothing is left after delete --force');
  });
}

test.run();
