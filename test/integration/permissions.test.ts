// Who can reach a pod (issue 17): root starts a pod (QEMU here, the built-in VMM in L1), and a real
// unprivileged user — made with useradd when absent, removed again — cannot connect to any of its
// sockets (agent ports, QMP or the VMM's control and vsock sockets), read its console log or
// records, or list or delete it with `virtc --root`: not through the directories (pods/ and the
// pod's are 0700), and not with the directories opened either (every socket and file is 0600).
// The pod runs on untouched. The same user's own private root works; a world-writable one, or one
// root owns, is refused (STATE_UNSAFE) by the library.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPod, enterPod, podStatus, startPod } from '../../src/index.js';
import { readAll, teardownRoot } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { testHypervisor as hypervisor } from '../helpers/hypervisor.js';

const USER = 'vc-perms-test';
const SPARE_ID = 64917;
const virtc = fileURLToPath(new URL('../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vcperm');
const root = join(tmp.path, 'root');
const pod = 'guarded';
const podDir = join(root, 'pods', pod);
let made = false;
let user = { uid: -1, gid: -1 };

function problem(): string | null {
  if (process.geteuid?.() !== 0) return 'needs root (useradd, and a pod another user must not reach)';
  for (const tool of ['useradd', 'userdel', 'setpriv', 'id']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

function ids(): { uid: number; gid: number } | null {
  const uid = spawnSync('id', ['-u', USER], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', USER], { encoding: 'utf8' });
  return uid.status === 0 ? { uid: Number(uid.stdout), gid: Number(gid.stdout) } : null;
}

/** Runs `args` as the test user: its uid and gid, no supplementary groups, a bare environment. */
function asUser(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', 'env', '-i',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/nonexistent', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args],
  { encoding: 'utf8', cwd: '/', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What the user gets from each path: connect for sockets, read for files ('ok' or the errno code). */
function userReach(paths: string[]): Record<string, string> {
  const script = `
    const net = require('node:net'), fs = require('node:fs');
    const out = {};
    Promise.all(${JSON.stringify(paths)}.map((p) => new Promise((done) => {
      let sock = false; try { sock = fs.lstatSync(p).isSocket(); } catch (e) {}
      if (!sock && !p.endsWith('.sock')) {
        try { fs.readFileSync(p); out[p] = 'ok'; } catch (e) { out[p] = e.code; }
        return done();
      }
      const s = net.connect(p);
      s.on('connect', () => { out[p] = 'ok'; s.destroy(); done(); });
      s.on('error', (e) => { out[p] = e.code; done(); });
    }))).then(() => process.stdout.write(JSON.stringify(out)));`;
  const r = asUser([process.execPath, '-e', script]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, string>;
}

/** The pod directory's sockets and files (lease files, lock) with their modes. */
function podEntries(): { path: string; socket: boolean; mode: number }[] {
  return readdirSync(podDir).map((name) => {
    const st = lstatSync(join(podDir, name));
    return { path: join(podDir, name), socket: st.isSocket(), mode: st.mode & 0o7777 };
  });
}

async function stillRunning(): Promise<void> {
  assert.is((await podStatus(pod, { root })).state, 'running', 'the pod still runs');
  const echo = await enterPod(pod, ['echo', 'alive'], { root });
  const [out, status] = await Promise.all([readAll(echo.stdout), echo.wait()]);
  assert.equal([out, status.exitCode], ['alive\n', 0], 'its agent still answers root');
}

const why = problem();

test.before(async () => {
  if (why) return;
  if (!ids()) {
    const r = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
    if (r.status === 0) made = true;
    else if (spawnSync('sh', ['-c', 'test -w /etc']).status === 0) throw new Error(`useradd ${USER}: ${r.stderr}`);
  }
  // Where /etc is read-only (the nested harness's L1: the host's tree over 9p) the user is a uid
  // without a passwd entry: the kernel checks numbers, so it is as real a user for what is tested.
  user = ids() ?? { uid: SPARE_ID, gid: SPARE_ID };
  if (!made && !ids()) console.log(`  (/etc is read-only: the user is uid/gid ${SPARE_ID}, which has no passwd entry)`);
  assert.ok(user.uid > 0 && user.gid > 0, `${USER} is not root`);
  // The root itself is readable (0755), and the test's directory passable, so the user reaches
  // pods/: what keeps them out is below it.
  chmodSync(tmp.path, 0o711);
  mkdirSync(root, { mode: 0o755 });
  chmodSync(root, 0o755);
});

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
  if (made) spawnSync('userdel', [USER]);
});

if (why) {
  test('permissions: skipped', () => console.log(`\nSKIP permissions: ${why}`));
} else {
  test(`root's pod (${hypervisor}): pods/ and the pod directory 0700, every socket and file in it 0600 or tighter`, async () => {
    await createPod({ id: pod, hypervisor, memoryMiB: 256, network: 'none' }, { root });
    await startPod(pod, { root });
    assert.is(statSync(join(root, 'pods')).mode & 0o7777, 0o700, 'pods/');
    assert.is(statSync(podDir).mode & 0o7777, 0o700, 'the pod directory');
    const entries = podEntries();
    const sockets = entries.filter((e) => e.socket).map((e) => e.path);
    assert.ok(sockets.some((p) => /agent\.0\.sock$|agent\.sock$/.test(p)), `an agent socket among ${sockets.join(', ')}`);
    assert.ok(sockets.some((p) => /(qmp|vmm)\.sock$/.test(p)), `a QMP or control socket among ${sockets.join(', ')}`);
    for (const e of entries) {
      assert.is(e.mode & 0o077, 0, `${e.path} is mode ${e.mode.toString(8)}: nothing for group or others`);
      if (e.socket) assert.is(e.mode, 0o600, `${e.path} socket mode`);
    }
    assert.is(statSync(join(podDir, 'console.log')).mode & 0o7777, 0o600, 'console.log');
  });

  test('the user cannot connect to its sockets or read its console log and records: the directory stops them (EACCES)', () => {
    const targets = [...podEntries().map((e) => e.path), join(root, 'pods')];
    const reach = userReach(targets);
    for (const p of targets) assert.is(reach[p], 'EACCES', `${p}: ${reach[p]}`);
  });

  test('with pods/ and the pod directory opened (0755), the sockets and files themselves still refuse the user', async () => {
    chmodSync(join(root, 'pods'), 0o755);
    chmodSync(podDir, 0o755);
    try {
      const entries = podEntries().filter((e) => e.socket || /console\.log$|state\.json$/.test(e.path));
      const reach = userReach(entries.map((e) => e.path));
      for (const e of entries) assert.is(reach[e.path], 'EACCES', `${e.path} (${e.socket ? 'socket' : 'file'}): ${reach[e.path]}`);
    } finally {
      chmodSync(podDir, 0o700);
      chmodSync(join(root, 'pods'), 0o700);
    }
    await stillRunning();
  });

  test('virtc --root <root> pod delete / pod list as the user: refused (STATE_UNSAFE names the root, its owner and mode); the pod runs on', async () => {
    const del = asUser([process.execPath, virtc, '--root', root, 'pod', 'delete', '--force', '--id', pod]);
    assert.is(del.code, 1, del.stderr);
    assert.match(del.stderr, new RegExp(`state root refused: ${root} is owned by uid 0, not uid ${user.uid} \\(this process\\) \\(mode 0755\\).*\\[STATE_UNSAFE\\]`));
    const list = asUser([process.execPath, virtc, '--root', root, 'pod', 'list']);
    assert.is(list.code, 1, list.stderr);
    assert.match(list.stderr, /\[STATE_UNSAFE\]/);
    assert.is(list.stdout, '');
    await stillRunning();
    assert.ok(readdirSync(podDir).includes('state.json'), 'the record is there');
  });

  test('the user\'s own root: a private one works; a world-writable one is refused', () => {
    const own = join(tmp.path, 'user-root');
    mkdirSync(own, { mode: 0o700 });
    chownSync(own, user.uid, user.gid);
    const ok = asUser([process.execPath, virtc, '--root', own, 'pod', 'list']);
    assert.is(ok.code, 0, ok.stderr);
    chmodSync(own, 0o777);
    const open = asUser([process.execPath, virtc, '--root', own, 'pod', 'list']);
    assert.is(open.code, 1, open.stderr);
    assert.match(open.stderr, new RegExp(`state root refused: ${own} \\(owner uid ${user.uid}, mode 0777\\) is writable by its group and everyone.*\\[STATE_UNSAFE\\]`));
  });
}

test.run();
