// virtc-runtime driven the way conmon drives runc, on real VM pods (QEMU here): a monitor that is a
// child subreaper (as conmon is) runs `create` with FIFOs as the container's stdio and a pid file,
// then waits for the pid in it — the holder — and reports how it ended; the test runs start, state,
// exec, ps, pause/resume, kill and delete as separate commands, as an engine does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { report, RUNTIME_BIN as BIN, RuntimeRig, type Monitored } from '../helpers/oci-runtime.js';
import { teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const tmp = tempDir('vcoci');
const rig = new RuntimeRig(tmp.path);
const { root, env, nativeHolder } = rig;
const realHolder = join(process.cwd(), 'build', 'Release', 'vc-holder');
const monitorCreate = (id: string, bundle: string, consoleSocket = ''): Monitored => rig.monitorCreate(id, bundle, { consoleSocket });
const bundleFor = rig.bundleFor.bind(rig);
const cli = rig.cli.bind(rig);
const readLog = rig.readLog.bind(rig);

function ok(args: string[], timeoutMs?: number): string {
  const r = cli(args, timeoutMs);
  assert.is(r.status, 0, `virtc-runtime ${args.join(' ')}: exit ${r.status}, stderr ${JSON.stringify(r.stderr)}\ndaemon log: ${readLog()}`);
  return r.stdout;
}

const state = (id: string) => JSON.parse(ok(['state', id])) as Record<string, unknown>;

test('create (FIFOs, pid file) → start → the holder exits with the container\'s code; state; delete', async () => {
  const m = monitorCreate('c1', bundleFor('b1', ['sh', '-c', 'echo hello from $(hostname); echo oops >&2; exit 3']));
  await waitFor('create to finish', () => report(m, 'create') !== undefined, 180_000);
  assert.equal(report(m, 'create'), { create: 0 }, `create failed: ${readLog()}\noci-log: ${existsSync(join(tmp.path, 'c1.oci-log')) ? readFileSync(join(tmp.path, 'c1.oci-log'), 'utf8') : ''}`);
  await waitFor('the pid file', () => report(m, 'holder') !== undefined, 5000);
  const holder = report(m, 'holder')!.holder as number;
  const s = state('c1');
  assert.equal([s.ociVersion, s.id, s.status, s.pid, s.bundle], ['1.0.2', 'c1', 'created', holder, join(tmp.path, 'b1')]);
  assert.equal((s.annotations as Record<string, string>)['org.example.note'], 'b1');
  ok(['start', 'c1']);
  await waitFor('the holder to exit', () => report(m, 'exit') !== undefined || report(m, 'signal') !== undefined, 60_000);
  assert.equal(report(m, 'exit'), { exit: 3 });
  await waitFor('output on the FIFOs', () => m.stdout().includes('hello') && m.stderr().includes('oops'), 5000);
  assert.equal([m.stdout(), m.stderr()], ['hello from b1\n', 'oops\n']);
  assert.is(state('c1').status, 'stopped');
  // A stopped container cannot be started again, and is deleted without --force.
  const again = cli(['start', 'c1']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /start: cannot start container "c1": it is stopped, not created/);
  ok(['delete', 'c1']);
  const gone = cli(['state', 'c1']);
  assert.equal([gone.status, gone.stderr.trim()], [1, 'virtc-runtime: state: container "c1" does not exist']);
  assert.equal(vmmProcessesUnder(root), [], 'the pod\'s VM is gone with its container');
});

test('a running container: exec (foreground and detached), ps, pause/resume, kill by signal, delete', async () => {
  const m = monitorCreate('c2', bundleFor('b2', ['sleep', '1000']));
  await waitFor('create to finish', () => report(m, 'create') !== undefined, 180_000);
  assert.equal(report(m, 'create'), { create: 0 }, readLog());
  ok(['start', 'c2']);
  assert.is(state('c2').status, 'running');
  const running = cli(['delete', 'c2']);
  assert.equal(running.status, 1);
  assert.match(running.stderr, /cannot delete container "c2" that is not stopped: running/);

  const fg = cli(['exec', '--env', 'WHO=exec', 'c2', 'sh', '-c', 'echo $WHO in $(hostname); exit 5']);
  assert.equal([fg.status, fg.stdout], [5, 'exec in b2\n'], fg.stderr);
  const pidFile = join(tmp.path, 'exec.pid');
  const detached = cli(['exec', '--detach', '--pid-file', pidFile, 'c2', 'sleep', '30'], 60_000, true);
  assert.is(detached.status, 0, readLog());
  const execHolder = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(execHolder > 0 && existsSync(`/proc/${execHolder}`), 'the detached exec\'s holder runs');

  const pids = JSON.parse(ok(['ps', '--format', 'json', 'c2'])) as number[];
  assert.ok(Array.isArray(pids) && pids.length >= 2, `ps lists the init and the exec: ${JSON.stringify(pids)}`);
  ok(['pause', 'c2']);
  assert.is(state('c2').status, 'paused');
  ok(['resume', 'c2']);
  assert.is(state('c2').status, 'running');

  ok(['kill', 'c2', 'KILL']);
  await waitFor('the holder to end', () => report(m, 'exit') !== undefined || report(m, 'signal') !== undefined, 30_000);
  assert.equal(report(m, 'signal'), { signal: 9 }, 'killed by SIGKILL, as waitpid sees it');
  assert.is(state('c2').status, 'stopped');
  const dead = cli(['kill', 'c2']);
  assert.equal(dead.status, 1);
  assert.match(dead.stderr, /container "c2" is not running \(stopped\)/);
  ok(['delete', 'c2']);
  // No container left: the daemon leaves and takes its socket with it.
  await waitFor('the daemon to leave', () => !existsSync(join(root, 'daemon.sock')), 15_000);
  assert.equal(vmmProcessesUnder(root), []);
});

test('terminal: --console-socket gets the pty master; the container sees a tty; its exit code comes through', async () => {
  if (!nativeHolder) {
    console.log(`# terminal test not run: it needs the native vc-holder (${realHolder} or VIRTC_RUNTIME_HOLDER), which makes the terminal; the Node stand-in does not`);
    return;
  }
  const bundle = bundleFor('bt', ['sh', '-c', 'if [ -t 0 ] && [ -t 1 ]; then echo on-a-tty; fi; exit 7']);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean } };
  config.process.terminal = true;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  const m = monitorCreate('ct', bundle, join(tmp.path, 'console.sock'));
  await waitFor('create to finish', () => report(m, 'create') !== undefined, 180_000);
  assert.equal(report(m, 'create'), { create: 0 }, readLog());
  ok(['start', 'ct']);
  await waitFor('the holder to exit', () => report(m, 'exit') !== undefined || report(m, 'signal') !== undefined, 60_000);
  assert.equal(report(m, 'exit'), { exit: 7 });
  assert.match(String(report(m, 'tty')!.tty), /on-a-tty/);
  ok(['delete', 'ct']);
});

test('a bad spec: create exits 1, the oci-log holds one JSON error naming the field', () => {
  const log = join(tmp.path, 'bad.oci-log');
  const bundle = bundleFor('bad', ['true'], { process: { args: [], cwd: '/' } });
  const r = spawnSync(process.execPath, [BIN, '--root', root, '--log', log, '--log-format', 'json', 'create', '--bundle', bundle, 'bad'], { encoding: 'utf8', env });
  assert.equal(r.status, 1);
  const entry = JSON.parse(readFileSync(log, 'utf8')) as { level: string; msg: string };
  assert.equal(entry.level, 'error');
  assert.match(entry.msg, /process\.args: must name the program to run/);
  assert.match(r.stderr, /process\.args: must name the program to run/);
  assert.ok(!existsSync(join(root, 'containers', 'bad')), 'no record left behind');
});

test.after(async () => {
  const pidFile = join(root, 'daemon.pid');
  if (existsSync(pidFile)) {
    try { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); } catch { /* gone */ }
  }
  await teardownRoot(join(root, 'pods'));
  tmp.remove();
});

test.run();
