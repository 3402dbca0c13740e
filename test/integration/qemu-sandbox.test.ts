// QEMU's confinement (issue 17): started by root, a pod's QEMU drops to the jail user once its
// devices are open (-runas: uid/gid 65534, no capability, no_new_privs) under its seccomp sandbox
// with spawning denied; an image disk still reaches it (as an open file, QMP add-fd) and leaves no
// fd set behind when detached; a QEMU told to start a process (a migration to `exec:`) is killed
// by SIGSYS, starts nothing, and the pod says so. With VC_VMM_JAIL=0 QEMU keeps root but not the
// set*id calls (elevateprivileges=deny).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachContainer, createContainer, createPod, deleteContainer, deletePod, podStatus, startPod } from '../../src/index.js';
import { QmpClient } from '../../src/hypervisor/qemu/qmp.js';
import { ociImage } from '../helpers/images.js';
import { readAll, teardownRoot } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const tmp = tempDir('vcqsb');
const root = join(tmp.path, 'root');

/** The fields of /proc/PID/status that say who a process is and what it may do. */
function confinement(pid: number): Record<string, string> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(status)?.[1]?.trim().replace(/\s+/g, ' ') ?? 'missing';
  return { Uid: field('Uid'), Gid: field('Gid'), CapEff: field('CapEff'), NoNewPrivs: field('NoNewPrivs'), Seccomp: field('Seccomp') };
}

function qemuPid(pod: string): number {
  return Number(readFileSync(join(root, 'pods', pod, 'vmm.pid'), 'utf8').trim());
}

function sandboxArg(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return argv[argv.indexOf('-sandbox') + 1] ?? 'missing';
}

async function qmp<T>(pod: string, body: (client: QmpClient) => Promise<T>): Promise<T> {
  const client = await QmpClient.connect(join(root, 'pods', pod, 'qmp.sock'));
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

if (process.geteuid?.() !== 0) {
  test('qemu-sandbox: skipped', () => console.log('\nSKIP qemu-sandbox: needs root (QEMU drops from root to the jail user; the test reads its /proc status)'));
} else {
  test('as root, QEMU runs as 65534:65534 with no capability, no_new_privs and its seccomp filter (spawn denied)', async () => {
    await createPod({ id: 'dropped', hypervisor: 'qemu', memoryMiB: 256, network: 'none' }, { root });
    await startPod('dropped', { root });
    const pid = qemuPid('dropped');
    assert.equal(confinement(pid), { Uid: '65534 65534 65534 65534', Gid: '65534 65534 65534 65534', CapEff: '0000000000000000', NoNewPrivs: '1', Seccomp: '2' });
    assert.is(sandboxArg(pid), 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
  });

  test('an image disk reaches the unprivileged QEMU as an open file; detached, no fd set is left', async () => {
    const layout = ociImage(tmp.path, join(tmp.path, 'oci'), 'v1', { files: { '/etc/marker': 'from-the-image\n' } });
    await createContainer('dropped', { id: 'img', image: `oci:${layout}:v1`, command: ['cat', '/etc/marker'] }, { root });
    const during = await qmp('dropped', (c) => c.execute('query-fdsets')) as Array<{ fds: Array<{ opaque?: string }> }>;
    assert.ok(during.some((set) => set.fds.some((fd) => fd.opaque?.startsWith('vc-disk:'))), `a vc-disk fd set while attached: ${JSON.stringify(during)}`);
    const proc = await attachContainer('dropped', 'img', { root, start: true });
    proc.stdin.end();
    const [out, status] = await Promise.all([readAll(proc.stdout), proc.wait()]);
    assert.is(out, 'from-the-image\n');
    assert.is(status.exitCode, 0);
    await deleteContainer('dropped', 'img', { root });
    const after = await qmp('dropped', (c) => c.execute('query-fdsets')) as Array<{ fds: Array<{ opaque?: string }> }>;
    assert.equal(after.filter((set) => set.fds.some((fd) => fd.opaque?.startsWith('vc-disk:'))), [], 'the disk\'s fd set is removed with it');
  });

  test('QEMU made to start a process (migrate to exec:) is killed by SIGSYS, starts nothing, and the pod says why', async () => {
    const pid = qemuPid('dropped');
    const marker = join(tmp.path, 'spawned');
    await qmp('dropped', (c) => c.execute('migrate', { uri: `exec:touch ${marker}` })).catch(() => {}); // QEMU dies mid-command
    await waitFor('QEMU to end', () => !existsSync(`/proc/${pid}`), 10_000); // this process started it, so reaps it
    assert.not.ok(existsSync(marker), 'no process ran');
    const status = await podStatus('dropped', { root });
    assert.is(status.state, 'stopped');
    assert.ok(status.vmmDied);
    assert.match(status.stopReason ?? '', /killed by SIGSYS/);
    await deletePod('dropped', { root, force: true });
  });

  test('with VC_VMM_JAIL=0 QEMU keeps root but cannot make set*id calls (elevateprivileges=deny)', async () => {
    process.env.VC_VMM_JAIL = '0';
    try {
      await createPod({ id: 'rooted', hypervisor: 'qemu', memoryMiB: 256, network: 'none' }, { root });
      await startPod('rooted', { root });
    } finally {
      delete process.env.VC_VMM_JAIL;
    }
    const pid = qemuPid('rooted');
    const seen = confinement(pid);
    assert.equal({ Uid: seen.Uid, NoNewPrivs: seen.NoNewPrivs, Seccomp: seen.Seccomp }, { Uid: '0 0 0 0', NoNewPrivs: '1', Seccomp: '2' });
    assert.is(sandboxArg(pid), 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    await deletePod('rooted', { root, force: true });
  });
}

test.run();
