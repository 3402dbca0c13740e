// vc-vmm's jail (native/vmm/jail, docs/vmm.md "Jail") without KVM: `vc-vmm jail-probe` runs the
// jail step of `vc-vmm run --detach --jail` with no VM, and this test looks at the jailed process
// from the host (/proc/PID/...) as test/nested/kvm-jail.test.ts does for a pod's real VMM: its own
// mount/pid/ipc/uts/cgroup namespaces, a root holding only the --jail-ro directory, the uid, no
// privileges, the rlimits, no inherited fds or environment, and no mount on the host, during or after.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeExecutable } from '../../src/native.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const dir = tempDir('vc-jail');
const vmm = nativeExecutable('vc-vmm');
const problem = process.getuid?.() !== 0 ? 'needs root (namespaces, mounts, the uid drop)'
  : spawnSync('unshare', ['--mount', '--pid', '--fork', 'true']).status !== 0 ? 'unshare --mount --pid fails here' : null;

/** Mount points under `prefix` in this (the host's) mount namespace. */
function hostMountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(prefix));
}

/** Exited: no such process, or a zombie (its parent, vc-vmm's, left it to whoever reaps orphans). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * The variables /proc/PID/environ shows. The jail blanks the block and cuts it to nothing with
 * PR_SET_MM, which needs CAP_SYS_RESOURCE; where it is withheld NUL bytes remain, and no variable.
 */
function variables(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
}

interface Probe { child: ChildProcess; pid: number; inside: Record<string, unknown> }

/** Starts a jailed probe with an extra inherited fd (3) and a variable in its environment. */
async function startProbe(args: string[]): Promise<Probe> {
  const child = spawn(vmm, ['jail-probe', ...args], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'], env: { VC_JAIL_TEST: 'secret' } });
  let out = '', err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.is(code, 0, `jail-probe failed: ${err}`);
  await waitFor('the probe answer', () => out.includes('\n'), 2000);
  const answer = JSON.parse(out) as { pid: number; inside: Record<string, unknown> };
  return { child, pid: answer.pid, inside: answer.inside };
}

function probeFails(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(vmm, ['jail-probe', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

if (problem) {
  test('vmm jail: skipped', () => { console.log(`\nSKIP vmm-jail: ${problem}`); });
} else {
  test('a jailed vc-vmm: own namespaces, only its read-only dirs, unprivileged, limited, nothing inherited, no host mount', async () => {
    const podDir = join(dir.path, 'pods/p');
    const images = join(dir.path, 'cache/images');
    mkdirSync(podDir, { recursive: true });
    mkdirSync(images, { recursive: true });
    writeFileSync(join(images, 'disk.erofs'), 'image bytes');
    const root = join(podDir, 'vmm-root');
    const probe = await startProbe(['--jail', root, '--jail-user', '65534:65534', '--jail-ro', images]);
    const proc = `/proc/${probe.pid}`;
    try {
      // Inside: pid 1 of its namespace, the uid, no fork, no host tree, its own hostname.
      assert.equal(probe.inside, { pid: 1, uid: 65534, gid: 65534, fork: 'Resource temporarily unavailable', hostname: 'vc-vmm', etcVisible: false });
      for (const ns of ['mnt', 'pid', 'ipc', 'uts', 'cgroup']) {
        assert.is.not(readlinkSync(`${proc}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `${ns} namespace is the host's`);
      }
      assert.is(readlinkSync(`${proc}/ns/net`), readlinkSync('/proc/self/ns/net'), 'the network namespace is the caller\'s');
      // Its root holds the path down to the image directory, and nothing else.
      const top = images.split('/')[1]!;
      assert.equal(readdirSync(`${proc}/root`), [top]);
      assert.equal(readdirSync(`${proc}/root${images}`), ['disk.erofs']);
      assert.is(readFileSync(`${proc}/root${images}/disk.erofs`, 'utf8'), 'image bytes');
      assert.not.ok(existsSync(`${proc}/root${podDir}/state.json`) || existsSync(`${proc}/root/etc`));
      const status = readFileSync(`${proc}/status`, 'utf8');
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      assert.match(status, /^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
      assert.match(status, /^Groups:\s*$/m);
      assert.match(status, /^CapEff:\s+0+$/m);
      assert.match(status, /^CapPrm:\s+0+$/m);
      const limits = readFileSync(`${proc}/limits`, 'utf8');
      assert.match(limits, /^Max core file size\s+0\s+0\s+bytes/m);
      assert.match(limits, /^Max file size\s+1073741824\s+1073741824\s+bytes/m);
      assert.match(limits, /^Max open files\s+4096\s+4096\s+files/m);
      assert.match(limits, /^Max processes\s+0\s+0\s+processes/m);
      // fd 3 (inherited) is closed; 0-2 are the probe's stdio.
      assert.equal(readdirSync(`${proc}/fd`).sort(), ['0', '1', '2']);
      assert.equal(variables(probe.pid), [], 'the environment is empty');
      // The jail's mounts exist only in its own namespace.
      assert.equal(hostMountsUnder(dir.path), []);
      assert.equal(readdirSync(root), [], 'the host sees the jail root empty');
    } finally {
      process.kill(probe.pid, 'SIGTERM');
    }
    await waitFor('the probe to exit', () => gone(probe.pid), 5000);
    assert.equal(hostMountsUnder(dir.path), []);
    rmdirSync(root); // empty: a plain rmdir removes it, as the pod's cleanup does
  });

  test('a jail that cannot be built fails with the reason, before anything runs', () => {
    const root = join(dir.path, 'bad/vmm-root');
    mkdirSync(join(dir.path, 'bad'), { recursive: true });
    let r = probeFails(['--jail', 'relative/dir']);
    assert.is(r.status, 2);
    assert.match(r.stderr, '--jail relative/dir: must be an absolute path');
    r = probeFails(['--jail', root, '--jail-ro', '/tmp/../etc']);
    assert.is(r.status, 2);
    assert.match(r.stderr, '--jail-ro /tmp/../etc: must be an absolute path without');
    r = probeFails(['--jail', root, '--jail-user', '0:0']);
    assert.is(r.status, 2);
    assert.match(r.stderr, '--jail-user 0:0: the jail runs the VMM unprivileged');
    r = probeFails(['--jail', root, '--jail-nofile', '10']);
    assert.is(r.status, 2);
    assert.match(r.stderr, '--jail-nofile 10: must be an integer in 64..');
    r = probeFails(['--jail', root, '--jail-ro', join(dir.path, 'missing')]);
    assert.is(r.status, 1);
    assert.match(r.stderr, `jail: --jail-ro ${join(dir.path, 'missing')}: No such file or directory`);
    writeFileSync(join(dir.path, 'bad/file'), '');
    r = probeFails(['--jail', join(dir.path, 'bad/file')]);
    assert.is(r.status, 1);
    assert.match(r.stderr, 'is not a directory');
    assert.equal(hostMountsUnder(dir.path), []);
  });

  test('run refuses --jail without --detach (the VMM must be forked into its pid namespace)', () => {
    const r = spawnSync(vmm, ['run', '--config', '-', '--jail', join(dir.path, 'x')], { input: '{"kernel":"/k"}', encoding: 'utf8' });
    assert.is(r.status, 2);
    assert.match(r.stderr, '--jail needs --detach');
  });
}

test.after(() => dir.remove());
test.run();
