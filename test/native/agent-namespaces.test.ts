// Containers that join another container's pid or IPC namespace (docs/agent-protocol.md, "Joined
// namespaces") in the agent's host test mode: what a Kubernetes pod's containers share with its
// sandbox (IPC always, pid with shareProcessNamespace). Real namespaces, mounts and cgroups: needs
// root and a cgroup2 mount.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { containerAgentSuite } from './agent-container-rig.js';
import { Conn, encode, T, text } from './agent-wire.js';

let c: Conn;
let rootfs = '';
let cgroupRoot = '';
let nextId = 0;

/** A started container running argv; its id, process and (agent-namespace) pid. */
async function started(argv: string[], extra: Record<string, unknown> = {}): Promise<{ id: string; process: number; pid: number }> {
  const id = `ns${++nextId}`;
  const r = await c.ok('create_container', { id, image: { path: rootfs }, argv, ...extra });
  await c.ok('start_container', { id });
  return { id, ...r };
}

async function finish(...ids: string[]): Promise<void> {
  for (const id of ids) {
    const st = await c.ok('container_status', { id });
    if (st.state === 'running' || st.state === 'paused') {
      await c.ok('signal_container', { id, signal: 9, all: true });
      await c.ok('wait_container', { id });
    }
    await c.ok('delete_container', { id });
  }
}

/** Runs a shell script in the container; its stdout (a non-zero exit fails the test). */
async function sh(id: string, script: string): Promise<string> {
  const ex = await c.ok('exec_container', { id, argv: ['sh', '-c', script] });
  const p = await c.finished(ex.process);
  assert.is(p.exit!.exitCode, 0, `${script}: ${text(p.stderr)}`);
  return text(p.stdout);
}

/** The command lines of every process the container sees, from its /proc (the exec'd sh too). */
const seenCommands = (id: string) => sh(id, 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < $f; echo; done');
const procs = (dir: string) => readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);

containerAgentSuite({
  title: 'agent joined namespaces',
  tmpPrefix: 'vc-ns-test-',
  cgroupName: 'vc-ns-test',
  rootfs: {},
  cgroupRootRemoved: true,
  started: (rig) => ({ c, rootfs, cgroupRoot } = rig),
  defineTests,
});

function defineTests(): void {
  test('pid joined: both containers see each other\'s processes, PID 1 is the joined init; a default container sees neither', async () => {
    const pause = await started(['sleep', '1001']);
    const member = await started(['sleep', '1002'], { joinNamespaces: { pid: pause.id } });
    const alone = await started(['sleep', '1003']);
    const inMember = await seenCommands(member.id);
    assert.match(inMember, 'sleep 1001', inMember);
    assert.match(inMember, 'sleep 1002');
    assert.is((await sh(member.id, 'tr "\\0" " " < /proc/1/cmdline')).trim(), 'sleep 1001', 'PID 1 is the joined init');
    const inPause = await seenCommands(pause.id);
    assert.match(inPause, 'sleep 1002', 'the joined container sees the member too');
    const inAlone = await seenCommands(alone.id);
    assert.not.match(inAlone, 'sleep 1001', inAlone);
    assert.not.match(inAlone, 'sleep 1002');
    assert.is((await sh(alone.id, 'tr "\\0" " " < /proc/1/cmdline')).trim(), 'sleep 1003');
    assert.is(readlinkSync(`/proc/${member.pid}/ns/pid`), readlinkSync(`/proc/${pause.pid}/ns/pid`));
    assert.is.not(readlinkSync(`/proc/${alone.pid}/ns/pid`), readlinkSync(`/proc/${pause.pid}/ns/pid`));
    // Its own mount and UTS namespaces all the same.
    assert.is.not(readlinkSync(`/proc/${member.pid}/ns/mnt`), readlinkSync(`/proc/${pause.pid}/ns/mnt`));
    assert.is.not(readlinkSync(`/proc/${member.pid}/ns/uts`), readlinkSync(`/proc/${pause.pid}/ns/uts`));
    await finish(member.id, alone.id, pause.id);
  });

  test('pid joined: when the init exits the container stops and its other processes are killed; the joined init\'s exit ends it too', async () => {
    const pause = await started(['sleep', '1011']);
    // A background child outlives the init unless the agent kills the cgroup.
    const member = await started(['sh', '-c', 'sleep 1012 & read x; exit 4'], { joinNamespaces: { pid: pause.id } });
    const cg = join(cgroupRoot, 'vc', member.id);
    await c.until(() => procs(cg).length === 2, 'the init and its child in the cgroup');
    c.send(encode(T.STDIN, member.process, 'go\n'));
    const st = await c.ok('wait_container', { id: member.id });
    assert.is(st.exitCode, 4);
    await c.until(() => procs(cg).length === 0, 'the background child killed');
    assert.is((await c.ok('container_status', { id: pause.id })).state, 'running', 'the joined container goes on');
    await c.ok('delete_container', { id: member.id });

    const second = await started(['sleep', '1013'], { joinNamespaces: { pid: pause.id } });
    await c.ok('signal_container', { id: pause.id, signal: 9 });
    const ended = await c.ok('wait_container', { id: second.id });
    assert.is(ended.signal, 'SIGKILL', 'the kernel kills the namespace with its PID 1');
    await finish(second.id, pause.id);
  });

  test('ipc joined: one IPC namespace and one /dev/shm; a default container has its own of both', async () => {
    const pause = await started(['sleep', '1021']);
    const member = await started(['sleep', '1022'], { joinNamespaces: { ipc: pause.id } });
    const alone = await started(['sleep', '1023']);
    const ipc = (id: string) => sh(id, 'readlink /proc/self/ns/ipc');
    assert.is(await ipc(member.id), await ipc(pause.id));
    assert.is.not(await ipc(alone.id), await ipc(pause.id));
    await sh(pause.id, 'echo from-pause > /dev/shm/a');
    assert.is(await sh(member.id, 'cat /dev/shm/a'), 'from-pause\n');
    await sh(member.id, 'echo from-member > /dev/shm/b');
    assert.is(await sh(pause.id, 'cat /dev/shm/b'), 'from-member\n');
    assert.is(await sh(alone.id, 'ls /dev/shm'), '', 'a tmpfs of its own');
    // pid stays its own: ipc alone was asked.
    assert.is((await sh(member.id, 'tr "\\0" " " < /proc/1/cmdline')).trim(), 'sleep 1022');
    await finish(member.id, alone.id, pause.id);
  });

  test('joining a missing, created or stopped container, an unknown namespace or itself: errors naming the field', async () => {
    const missing = await c.errorCode('create_container', { id: 'nsx', image: { path: rootfs }, argv: ['true'], joinNamespaces: { pid: 'nope' } });
    assert.equal([missing.code, missing.message], ['NOT_FOUND', 'joinNamespaces.pid: no container "nope"']);
    await c.ok('create_container', { id: 'nscreated', image: { path: rootfs }, argv: ['true'] });
    const created = await c.errorCode('create_container', { id: 'nsx', image: { path: rootfs }, argv: ['true'], joinNamespaces: { ipc: 'nscreated' } });
    assert.equal([created.code, created.message], ['ILLEGAL_STATE', 'joinNamespaces.ipc: container "nscreated" is created, not running']);
    await c.ok('start_container', { id: 'nscreated' });
    await c.ok('wait_container', { id: 'nscreated' });
    const stopped = await c.errorCode('create_container', { id: 'nsx', image: { path: rootfs }, argv: ['true'], joinNamespaces: { pid: 'nscreated' } });
    assert.match(stopped.message, 'is stopped, not running');
    const net = await c.errorCode('create_container', { id: 'nsx', image: { path: rootfs }, argv: ['true'], joinNamespaces: { net: 'nscreated' } });
    assert.equal([net.code, net.message], ['BAD_REQUEST', 'joinNamespaces.net: cannot be joined (pid, ipc)']);
    const self = await c.errorCode('create_container', { id: 'nsx', image: { path: rootfs }, argv: ['true'], joinNamespaces: { pid: 'nsx' } });
    assert.equal([self.code, self.message], ['BAD_REQUEST', 'joinNamespaces.pid: "nsx" is this container itself']);
    assert.is((await c.errorCode('container_status', { id: 'nsx' })).code, 'NOT_FOUND', 'nothing was left of the refused creates');
    await c.ok('delete_container', { id: 'nscreated' });
  });
}
