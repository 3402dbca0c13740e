// The state document `state` prints, the crash-only records it reads, the log lines engines parse,
// and the translation the runtime shares with the containerd shim (src/oci).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ociState } from '../../../src/oci-runtime/commands.js';
import { formatLine, RuntimeLog } from '../../../src/oci-runtime/log.js';
import { listRecordIds, readRecord, removeRecord, writeRecord, type ContainerRecord } from '../../../src/oci-runtime/state-store.js';
import { execOptions, execProcess } from '../../../src/oci-runtime/exec-process.js';
import { exitRecordOf, exitStatusNumber } from '../../../src/oci-runtime/holder-link.js';
import { engineRole, containerIdFor, podIdFor } from '../../../src/oci/pod-annotations.js';
import { parseSpec } from '../../../src/oci/spec.js';
import { features } from '../../../src/oci-runtime/features-document.js';
import { VcError } from '../../../src/errors.js';

const record = (over: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id: 'c1', bundle: '/b', pod: 'c1', containerId: 'c1', ownsPod: true, annotations: { a: 'b' },
  status: 'running', holderPid: process.pid, createdAt: '2026-01-01T00:00:00.000Z', ...over,
});

test('state: the OCI document with the holder\'s pid; stopped when the holder is gone', () => {
  const s = ociState(record());
  assert.equal(Object.keys(s).sort(), ['annotations', 'bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status']);
  assert.equal([s.ociVersion, s.id, s.status, s.pid, s.bundle, s.annotations], ['1.0.2', 'c1', 'running', process.pid, '/b', { a: 'b' }]);
  assert.equal(ociState(record({ status: 'created' })).status, 'created');
  assert.equal(ociState(record({ status: 'paused' })).status, 'paused');
  assert.equal(ociState(record({ status: 'creating', holderPid: 0 })).status, 'creating');
  // A holder that died (its pid free) means the container is over, whatever the record says.
  const gone = ociState(record({ holderPid: 2 ** 22 + 1 }));
  assert.equal([gone.status, gone.pid], ['stopped', 0]);
  assert.equal(ociState(record({ status: 'deleting' })).status, 'stopped');
});

test('records: written whole, read back, listed, removed (an unmounted pin file too); a corrupt one names its file and the way out', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcrt-'));
  try {
    writeRecord(root, record({ id: 'b' }));
    writeRecord(root, record({ id: 'a', status: 'stopped', exit: { kind: 'signalled', value: 9 } }));
    assert.equal(listRecordIds(root), ['a', 'b']);
    assert.equal(readRecord(root, 'a')!.exit, { kind: 'signalled', value: 9 });
    assert.is(readRecord(root, 'nope'), null);
    writeRecord(root, record({ id: 'x' }));
    rmSync(join(root, 'containers', 'x', 'state.json'));
    writeFileSync(join(root, 'containers', 'x', 'state.json'), '{"id":');
    assert.throws(() => readRecord(root, 'x'), /containers\/x\/state\.json: unreadable .*delete --force x/);
    // A pin that a crash left as a plain file (before unshare mounted it) goes with the record.
    writeFileSync(join(root, 'containers', 'b', 'netns'), '');
    await removeRecord(root, 'b');
    assert.equal(listRecordIds(root), ['a', 'x']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('log: json lines as podman and containerd read them; only errors without --debug in json', () => {
  const at = new Date('2026-01-02T03:04:05.000Z');
  assert.equal(JSON.parse(formatLine('json', 'error', 'boom "x"', at)), { level: 'error', msg: 'boom "x"', time: '2026-01-02T03:04:05.000Z' });
  assert.equal(formatLine('text', 'warning', 'a "b"', at), 'time="2026-01-02T03:04:05.000Z" level=warning msg="a \\"b\\""\n');
  const dir = mkdtempSync(join(tmpdir(), 'vcrt-'));
  try {
    const file = join(dir, 'oci-log');
    const log = new RuntimeLog(file, 'json', false, false);
    log.warn('not applied');
    log.info('hello');
    log.error('create failed: no such image');
    // podman unmarshals the whole file as one object when create fails: it must be exactly one.
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { level: string; msg: string };
    assert.equal([parsed.level, parsed.msg], ['error', 'create failed: no such image']);
    const text = join(dir, 'log.txt');
    const tlog = new RuntimeLog(text, 'text', false, false);
    tlog.warnOnce('w');
    tlog.warnOnce('w');
    assert.equal(readFileSync(text, 'utf8').split('\n').filter(Boolean).length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('log rotation (the daemon\'s log): past the limit the file becomes FILE.1, replacing the last one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vcrt-'));
  try {
    const file = join(dir, 'daemon.log');
    writeFileSync(file, 'x'.repeat(150));
    const log = new RuntimeLog(file, 'text', false, false, 200);
    log.info('one');
    assert.equal(readFileSync(`${file}.1`, 'utf8'), 'x'.repeat(150), 'the existing file was full: rotated before the first line');
    assert.match(readFileSync(file, 'utf8'), /^time=.* level=info msg="one"\n$/);
    for (let i = 0; i < 4; i++) log.info(`line ${i}`);
    const current = readFileSync(file, 'utf8');
    const previous = readFileSync(`${file}.1`, 'utf8');
    assert.ok(statSync(file).size <= 200 && previous.length <= 200, `sizes ${current.length}, ${previous.length}`);
    assert.ok(current.includes('line 3') && !previous.includes('x'), 'the first rotation\'s file was replaced');
    assert.equal(readdirSync(dir).sort(), ['daemon.log', 'daemon.log.1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pods: CRI keys as the shim, podman\'s infra SandboxID, else a pod of its own', () => {
  assert.equal(engineRole({}, 'c'), { kind: 'alone' });
  assert.equal(engineRole({ 'io.kubernetes.cri.container-type': 'sandbox' }, 'c'), { kind: 'sandbox' });
  assert.equal(engineRole({ 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 's' }, 'c'), { kind: 'member', sandboxId: 's' });
  assert.equal(engineRole({ 'io.kubernetes.cri-o.SandboxID': 'infra' }, 'c'), { kind: 'member', sandboxId: 'infra' });
  assert.equal(engineRole({ 'io.kubernetes.cri-o.SandboxID': 'c' }, 'c'), { kind: 'alone' });
  assert.throws(() => engineRole({ 'io.kubernetes.cri.container-type': 'pod' }, 'c'), (e: Error) => e instanceof VcError && e.code === 'INVALID_CONFIG' && /"pod": expected sandbox or container/.test(e.message));
  const podmanId = 'a'.repeat(64);
  assert.equal(containerIdFor(podmanId), podmanId);
  assert.ok(podIdFor(podmanId).length <= 40);
});

const base = parseSpec({
  process: { args: ['sleep', '9'], env: ['PATH=/bin', 'A=1'], cwd: '/srv', user: { uid: 1000, gid: 1000 }, capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] } },
}, 'config.json').process;

test('exec: the container\'s process with the command, --env, --cwd, --user over it (as runc)', () => {
  const p = execProcess(base, { overrides: { args: ['ls', '-l'], env: ['B=2'], cwd: '/tmp', user: '0:0', tty: true } });
  assert.equal([p.args, p.env, p.cwd, p.user.uid, p.user.gid, p.terminal], [['ls', '-l'], ['PATH=/bin', 'A=1', 'B=2'], '/tmp', 0, 0, true]);
  const kept = execProcess(base, { overrides: { args: ['id'] } });
  assert.equal([kept.cwd, kept.user.uid], ['/srv', 1000]);
  // The shim's translation: env as a record, user as uid:gid, capabilities carried.
  const o = execOptions(p, true, 40, 120);
  assert.equal([o.env, o.user, o.tty, o.rows, o.cols], [{ PATH: '/bin', A: '1', B: '2' }, '0:0', true, 40, 120]);
  assert.equal((o.security as { capabilities: { bounding: string[] } }).capabilities.bounding, ['CAP_KILL']);
  const whole = execProcess(base, { process: { args: ['true'], cwd: '/' } });
  assert.equal(whole.args, ['true']);
  assert.throws(() => execProcess(base, { process: { args: [], cwd: '/' } }), /exec process: process\.args|args: must name the program/);
  assert.throws(() => execProcess(base, { overrides: { args: ['x'], user: 'root' } }), /--user: expected UID or UID:GID \(numbers\), got "root"/);
  assert.throws(() => execProcess(base, { overrides: { args: [] } }), /a command \(or --process FILE\) is required/);
});

test('exit statuses: code, signal, and a vanished VM as 255', () => {
  assert.equal(exitRecordOf({ exitCode: 3, signal: null }), { kind: 'exited', value: 3 });
  assert.equal(exitRecordOf({ exitCode: null, signal: 'SIGKILL' }), { kind: 'signalled', value: 9 });
  assert.equal(exitRecordOf({ exitCode: null, signal: null }), { kind: 'exited', value: 255 });
  assert.equal(exitStatusNumber({ kind: 'signalled', value: 15 }), 143);
});

test('one translation: the shim and the runtime both take the OCI spec through src/oci, neither has its own', () => {
  const src = (f: string) => readFileSync(new URL(`../../../../src/${f}`, import.meta.url), 'utf8');
  for (const [file, wanted] of [
    ['shim/task-service.ts', ['../oci/container-from-spec.js', '../oci/spec.js']],
    ['oci-runtime/container-create.ts', ['../oci/container-from-spec.js', '../oci/spec.js', '../oci/pod-annotations.js']],
    ['oci-runtime/exec-process.ts', ['../oci/container-from-spec.js']],
  ] as const) {
    for (const module of wanted) assert.ok(src(file).includes(`from '${module}'`), `${file} imports ${module}`);
  }
  for (const file of ['shim/task-service.ts', 'oci-runtime/container-create.ts', 'oci-runtime/daemon-containers.ts']) {
    assert.not.match(src(file), /function (containerFromSpec|processFields|limitsFromResources|parseSpec)\b/, `${file} defines no translation of its own`);
  }
});

test('features: runc\'s document shape', () => {
  const f = features();
  assert.equal(f.ociVersionMin, '1.0.0');
  const linux = f.linux as Record<string, Record<string, unknown>>;
  assert.ok((linux.namespaces as unknown as string[]).includes('network'));
  assert.ok((linux.capabilities as unknown as string[]).includes('CAP_SYS_ADMIN'));
  assert.equal(linux.seccomp!.enabled, true);
  assert.ok((linux.seccomp!.actions as string[]).includes('SCMP_ACT_ERRNO'));
  assert.equal(linux.cgroup, { v1: false, v2: true, systemd: false, systemdUser: false });
});

test.run();
