// Containers in a real pod: isolation, images, stdio, TTY, limits, and cleanup. On QEMU here, and on
// the built-in VMM inside the nested-KVM harness (test/nested).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  attachContainer, containerStatus, createContainer, createPod, deleteContainer, deletePod, enterContainer,
  listContainers, podStatus, startContainer, startPod, stopContainer, stopPod,
} from '../../src/index.js';
import { codeOf } from '../helpers/errors.js';
import { ociImage } from '../helpers/images.js';
import { readAll, teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { testHypervisor, testNetwork } from '../helpers/hypervisor.js';

const tmp = tempDir('vck');
const root = tmp.path;
const pod = 'ctr';

/** Runs a command in a container and collects everything it printed. */
async function inContainer(id: string, argv: string[], options: { user?: string } = {}) {
  const proc = await enterContainer(pod, id, argv, { root, ...options });
  const [out, err, status] = await Promise.all([readAll(proc.stdout), readAll(proc.stderr), proc.wait()]);
  return { out, err, status };
}

/** Creates a container on the running pod, attaches to it, starts it, and collects its output. */
async function runToEnd(config: Parameters<typeof createContainer>[1], stdin?: string) {
  await createContainer(pod, config, { root });
  const proc = await attachContainer(pod, config.id, { root, start: true });
  proc.stdin.end(stdin ?? '');
  const [out, err, status] = await Promise.all([readAll(proc.stdout), readAll(proc.stderr), proc.wait()]);
  return { out, err, status };
}

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('a pod starts with the container its config lists, on the default busybox image', async () => {
  await createPod({
    id: pod, hypervisor: testHypervisor, memoryMiB: 512, network: testNetwork,
    containers: [{ id: 'web', command: ['sleep', '1000'], hostname: 'web-host' }],
  }, { root });
  await startPod(pod, { root });
  const web = await containerStatus(pod, 'web', { root });
  assert.is(web.state, 'running');
  assert.equal(web.argv, ['sleep', '1000']);
});

test('the container has its own hostname, pid namespace and mounts', async () => {
  const host = await inContainer('web', ['hostname']);
  assert.is(host.out, 'web-host\n');
  const init = await inContainer('web', ['cat', '/proc/1/cmdline']);
  assert.is(init.out, 'sleep\u00001000\u0000', 'PID 1 in the container is its own command');
  const mounts = await inContainer('web', ['cat', '/proc/self/mounts']);
  const targets = mounts.out.trim().split('\n').map((line) => line.split(' ')[1]);
  assert.is(targets[0], '/', 'the overlay is the root');
  assert.match(mounts.out.split('\n')[0]!, /^overlay \/ overlay /);
  for (const target of targets) assert.not.match(target!, /^\/run\/vc|^\/sys\/fs\/cgroup\/vc|^\/lib\/modules/, `agent mount ${target} is visible`);
  const ps = await inContainer('web', ['ps', '-o', 'pid,comm']);
  assert.not.match(ps.out, /vc-agent|init/, 'the agent is not in the container pid namespace');
});

test('a container added to the running pod: PID 1, exit code, stdout and stderr apart', async () => {
  const result = await runToEnd({ id: 'once', command: ['sh', '-c', 'echo pid=$$; echo out; echo err >&2; exit 3'] });
  assert.is(result.out, 'pid=1\nout\n');
  assert.is(result.err, 'err\n');
  assert.equal(result.status, { exitCode: 3, signal: null });
  const status = await containerStatus(pod, 'once', { root });
  assert.equal([status.state, status.exitCode, status.signal, status.oomKilled], ['stopped', 3, null, false]);
});

test('stdin reaches the container', async () => {
  const result = await runToEnd({ id: 'upper', command: ['tr', 'a-z', 'A-Z'] }, 'hello container\n');
  assert.is(result.out, 'HELLO CONTAINER\n');
  assert.is(result.status.exitCode, 0);
});

test('a TTY container sees a terminal on stdin and stdout', async () => {
  const result = await runToEnd({ id: 'tty', tty: true, command: ['sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty'] });
  assert.match(result.out, /is-a-tty\r?\n/);
  assert.match(result.out, /\/dev\/pts\/\d+\r?\n/, 'the terminal is from the container\'s own devpts, as under runc');
  assert.is(result.status.exitCode, 0);
});

test('stop: SIGTERM is ignored by a pid-namespace init without a handler, so SIGKILL follows', async () => {
  await createContainer(pod, { id: 'sleeper', command: ['sleep', '1000'] }, { root });
  await startContainer(pod, 'sleeper', { root });
  assert.is(await codeOf(deleteContainer(pod, 'sleeper', { root })), 'CONTAINER_RUNNING');
  const stopped = await stopContainer(pod, 'sleeper', { root, timeoutMs: 1000 });
  assert.equal([stopped.state, stopped.signal, stopped.exitCode], ['stopped', 'SIGKILL', null]);
  await deleteContainer(pod, 'sleeper', { root });
  assert.is(await codeOf(containerStatus(pod, 'sleeper', { root })), 'CONTAINER_NOT_FOUND');
});

test('env, working directory and user come from the image config', async () => {
  const layout = ociImage(tmp.path, `${tmp.path}/oci`, 'v1', {
    env: ['FOO=from-image', 'KEEP=1'], workingDir: '/work', user: 'app',
    cmd: ['sh', '-c', 'echo "$FOO $KEEP"; pwd; id -u; id -g'], files: { 'work/hello.txt': 'hi\n' },
  });
  const fromImage = await runToEnd({ id: 'cfg', image: `oci:${layout}:v1` });
  assert.is(fromImage.out, 'from-image 1\n/work\n1000\n1000\n');
  const overridden = await runToEnd({ id: 'cfg2', image: `oci:${layout}:v1`, env: { FOO: 'mine' }, user: '0', workdir: '/tmp' });
  assert.is(overridden.out, 'mine 1\n/tmp\n0\n0\n');
});

test('OCI default confinement: default capabilities, a seccomp filter, masked and read-only paths; privileged turns them off', async () => {
  // The container `web` was created without any security config: it gets the OCI defaults, and
  // so do processes exec'ed into it.
  const r = await inContainer('web', ['sh', '-c', 'grep -E "^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|Seccomp):" /proc/1/status /proc/self/status; stat -c %F /proc/kcore; ls -A /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/msgmax']);
  const fields = (file: string) => Object.fromEntries(r.out.split('\n').filter((l) => l.startsWith(`${file}:`)).map((l) => l.slice(file.length + 1).split(/:\s*/)));
  for (const file of ['/proc/1/status', '/proc/self/status']) {
    const f = fields(file);
    assert.equal([f.CapBnd, f.CapEff, f.CapPrm, f.CapInh, f.CapAmb], ['00000000a80425fb', '00000000a80425fb', '00000000a80425fb', '0000000000000000', '0000000000000000'], `${file}: ${r.out}`);
    assert.is(f.Seccomp, '2', `${file}: a filter is installed`);
  }
  assert.match(r.out, 'character special file\n0\n', '/proc/kcore is /dev/null, /sys/firmware empty');
  assert.match(r.err, 'Read-only file system', '/proc/sys is read-only');
  const priv = await runToEnd({ id: 'priv', command: ['sh', '-c', 'grep -E "^(CapEff|Seccomp):" /proc/self/status; stat -c %F /proc/kcore; echo 1 > /proc/sys/kernel/msgmax && cat /proc/sys/kernel/msgmax'], security: { privileged: true } });
  assert.match(priv.out, /^CapEff:\s*000001ffffffffff\nSeccomp:\s*0\nregular file\n1\n$/);
});

test('writes stay in their container: not in the image, not in another container', async () => {
  await createContainer(pod, { id: 'a', command: ['sleep', '1000'] }, { root });
  await createContainer(pod, { id: 'b', command: ['sleep', '1000'] }, { root });
  await startContainer(pod, 'a', { root });
  await startContainer(pod, 'b', { root });
  const write = await inContainer('a', ['sh', '-c', 'echo secret > /etc/written-by-a; rm /bin/ls; echo ok']);
  assert.is(write.out, 'ok\n');
  assert.is((await inContainer('a', ['cat', '/etc/written-by-a'])).out, 'secret\n');
  const inB = await inContainer('b', ['sh', '-c', 'cat /etc/written-by-a 2>&1; ls / >/dev/null && echo ls-ok']);
  assert.match(inB.out, /No such file/);
  assert.match(inB.out, /ls-ok/);
  // The same image in a fresh container is untouched.
  const fresh = await runToEnd({ id: 'fresh', command: ['sh', '-c', 'test -e /etc/written-by-a && echo leaked; test -e /bin/ls && echo intact'] });
  assert.is(fresh.out, 'intact\n');
  for (const id of ['a', 'b']) await stopContainer(pod, id, { root, timeoutMs: 500 });
});

test('a memory limit is enforced: the allocation is OOM-killed and reported as such', async () => {
  const result = await runToEnd({
    id: 'hog', limits: { memoryMiB: 24 },
    command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\000" a); echo survived ${#x}'],
  });
  assert.not.match(result.out, /survived/);
  const status = await containerStatus(pod, 'hog', { root });
  assert.is(status.state, 'stopped');
  assert.ok(status.oomKilled, `oomKilled: ${JSON.stringify(status)}`);
});

test('malformed images are rejected with clear errors and leave nothing behind', async () => {
  const before = (await listContainers(pod, { root })).length;
  const missing = await createContainer(pod, { id: 'bad1', image: `oci-archive:${tmp.path}/missing.tar` }, { root }).then(() => undefined, (e: Error) => e);
  assert.ok(missing, 'a missing archive was accepted');
  assert.match(missing!.message, /missing\.tar/);
  writeFileSync(`${tmp.path}/garbage.tar`, createHash('sha256').update('x').digest());
  const garbage = await createContainer(pod, { id: 'bad2', image: `docker-archive:${tmp.path}/garbage.tar` }, { root }).then(() => undefined, (e: Error) => e);
  assert.ok(garbage, 'a garbage archive was accepted');
  assert.match(garbage!.message, /garbage\.tar/);
  const unknownTag = await createContainer(pod, { id: 'bad3', image: `oci:${tmp.path}/oci:nope` }, { root }).then(() => undefined, (e: Error) => e);
  assert.match(unknownTag?.message ?? '', /nope/);
  assert.is((await listContainers(pod, { root })).length, before);
});

test('stopping and deleting the pod leaves no VM, socket or directory', async () => {
  const status = await podStatus(pod, { root });
  await stopPod(pod, { root });
  const web = await containerStatus(pod, 'web', { root });
  assert.is(web.state, 'stopped');
  await deletePod(pod, { root });
  assert.not.ok(existsSync(`${root}/pods/${pod}`));
  assert.equal(vmmProcessesUnder(root), []);
  assert.not.ok(status.pid !== null && existsSync(`/proc/${status.pid}`) && readFileSync(`/proc/${status.pid}/cmdline`, 'utf8').includes(root));
});

test.run();
