// virtc from separate processes, as an OCI-style runtime would call it: create in one process,
// start in the next, and so on; state lives only on disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { testHypervisor as hypervisor } from '../helpers/hypervisor.js';

const virtc = fileURLToPath(new URL('../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vcc');
const root = tmp.path;

interface Result { code: number | null; stdout: string; stderr: string }

function run(args: string[], input?: string, env?: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [virtc, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('usage errors exit 2 and name the problem', async () => {
  const noId = await run(['pod', 'start']);
  assert.is(noId.code, 2);
  assert.match(noId.stderr, /--id is required/);
  const badInt = await run(['--root', root, 'pod', 'create', '--id', 'x', '--vcpus', 'two']);
  assert.is(badInt.code, 2);
  assert.match(badInt.stderr, /--vcpus: expected a whole number, got "two"/);
});

test('invalid config exits 1 with the field and value, and creates nothing', async () => {
  const result = await run(['--root', root, 'pod', 'create', '--id', 'bad/id']);
  assert.is(result.code, 1);
  assert.match(result.stderr, /id: .*got "bad\/id" \[INVALID_CONFIG\]/);
  assert.not.ok(existsSync(`${root}/pods/bad`));
});

test('the pod lifecycle across separate virtc processes', async () => {
  const created = await run(['--root', root, 'pod', 'create', '--id', 'cli1', '--hypervisor', hypervisor, '--memory', '256', '--json']);
  assert.is(created.code, 0, created.stderr);
  assert.is(JSON.parse(created.stdout).state, 'ready');

  const started = await run(['pod', 'start', '--id', 'cli1', '--root', root]);
  assert.is(started.code, 0, started.stderr);
  assert.match(started.stdout, /state\s+running/);

  const status = JSON.parse((await run(['--root', root, 'pod', 'status', '--id', 'cli1', '--json'])).stdout);
  assert.is(status.state, 'running');
  assert.is(status.hypervisor, hypervisor);
  assert.ok(status.pid > 0);
  const shown = await run(['--root', root, 'pod', 'status', '--id', 'cli1']);
  assert.match(shown.stdout, new RegExp(`^hypervisor\\s+${hypervisor}\\b`, 'm'));
  assert.match(shown.stdout, new RegExp(`^vmm pid\\s+${status.pid}$`, 'm'));

  const uname = await run(['--root', root, 'pod', 'enter', '--id', 'cli1', '--', 'uname', '-r']);
  assert.is(uname.code, 0, uname.stderr);
  assert.is(uname.stdout.trim(), status.kernelRelease);

  const exit = await run(['--root', root, 'pod', 'enter', '--id', 'cli1', '--', 'sh', '-c', 'exit 42']);
  assert.is(exit.code, 42);

  const echo = await run(['--root', root, 'pod', 'enter', '--id', 'cli1', '--', 'tr', 'a-z', 'A-Z'], 'hello from stdin\n');
  assert.is(echo.code, 0, echo.stderr);
  assert.is(echo.stdout, 'HELLO FROM STDIN\n');

  const missing = await run(['--root', root, 'pod', 'enter', '--id', 'cli1', '--', '/no/such/program']);
  assert.is(missing.code, 125);
  assert.match(missing.stderr, /\/no\/such\/program/);

  // Containers from separate processes: create, start, status, enter, stop, delete.
  const cc = await run(['--root', root, 'container', 'create', '--pod', 'cli1', '--id', 'c1', '--env', 'GREETING=hi', '--', 'sleep', '1000']);
  assert.is(cc.code, 0, cc.stderr);
  assert.match(cc.stdout, /state\s+created/);
  const cs = await run(['--root', root, 'container', 'start', '--pod', 'cli1', '--id', 'c1']);
  assert.is(cs.code, 0, cs.stderr);
  const cstatus = JSON.parse((await run(['--root', root, 'container', 'status', '--pod', 'cli1', '--id', 'c1', '--json'])).stdout);
  assert.is(cstatus.state, 'running');
  const center = await run(['--root', root, 'container', 'enter', '--pod', 'cli1', '--id', 'c1', '--', 'sh', '-c', 'echo $GREETING; cat /proc/1/comm; exit 4']);
  assert.equal([center.code, center.stdout], [4, 'hi\nsleep\n']);
  const cstop = await run(['--root', root, 'container', 'stop', '--pod', 'cli1', '--id', 'c1', '--timeout', '1', '--json']);
  assert.is(cstop.code, 0, cstop.stderr);
  assert.is(JSON.parse(cstop.stdout).state, 'stopped');
  const clist = await run(['--root', root, 'container', 'list', '--pod', 'cli1']);
  assert.match(clist.stdout, /c1\s+stopped\s+-\s+SIGKILL\s+sleep 1000/);
  assert.is((await run(['--root', root, 'container', 'delete', '--pod', 'cli1', '--id', 'c1'])).code, 0);

  const list = JSON.parse((await run(['--root', root, 'pod', 'list', '--json'])).stdout) as Array<{ id: string; state: string }>;
  assert.equal(list.map((p) => [p.id, p.state]), [['cli1', 'running']]);

  const refused = await run(['--root', root, 'pod', 'delete', '--id', 'cli1']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /POD_RUNNING/);

  const stopped = await run(['--root', root, 'pod', 'stop', '--id', 'cli1']);
  assert.is(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /state\s+stopped/);

  const deleted = await run(['--root', root, 'pod', 'delete', '--id', 'cli1']);
  assert.is(deleted.code, 0, deleted.stderr);
  assert.not.ok(existsSync(`${root}/pods/cli1`));
  assert.equal(vmmProcessesUnder(root), []);
});

test('virtc run --rm: the default image, stdio, the exit code, and nothing left behind', async () => {
  const result = await run(['--root', root, 'run', '--rm', '--hypervisor', hypervisor, '--memory', '256', '--', 'sh', '-c', 'echo pid=$$; tr a-z A-Z; exit 5'], 'shout\n');
  assert.is(result.code, 5, result.stderr);
  assert.is(result.stdout, 'pid=1\nSHOUT\n');
  const pods = JSON.parse((await run(['--root', root, 'pod', 'list', '--json'])).stdout) as unknown[];
  assert.equal(pods, []);
  assert.equal(vmmProcessesUnder(root), []);
});

test('virtc run with docker\'s flags: -v HOST:CONTAINER:ro, -e, -w, -u; then -d --name leaves the pod running', async () => {
  const host = tempDir('vcv');
  try {
    chmodSync(host.path, 0o755); // copied with its mode: user 1000 must be able to enter it
    writeFileSync(`${host.path}/f`, 'from the host\n');
    const result = await run([
      '--root', root, 'run', '--rm', '--hypervisor', hypervisor, '--memory', '256',
      '-v', `${host.path}:/data:ro`, '-e', 'A=1', '-e', 'FROM_HOST', '-w', '/data', '-u', '1000',
      '--', 'sh', '-c', 'pwd; echo $A $FROM_HOST; id -u; cat f; touch /data/g 2>/dev/null || echo read-only',
    ], '', { FROM_HOST: 'inherited' });
    assert.is(result.code, 0, result.stderr);
    assert.is(result.stdout, '/data\n1 inherited\n1000\nfrom the host\nread-only\n');
  } finally {
    host.remove();
  }

  const detached = await run(['--root', root, 'run', '-d', '--name', 'bg1', '--hypervisor', hypervisor, '--memory', '256', '--', 'sleep', '1000']);
  assert.is(detached.code, 0, detached.stderr);
  assert.is(detached.stdout, 'bg1\n');
  const container = JSON.parse((await run(['--root', root, 'container', 'status', '--pod', 'bg1', '--id', 'main', '--json'])).stdout);
  assert.equal([container.state, container.argv], ['running', ['sleep', '1000']]);
  const pods = JSON.parse((await run(['--root', root, 'pod', 'list', '--json'])).stdout) as Array<{ id: string; state: string }>;
  assert.equal(pods.map((p) => [p.id, p.state]), [['bg1', 'running']]);
  const deleted = await run(['--root', root, 'pod', 'delete', '--force', '--id', 'bg1']);
  assert.is(deleted.code, 0, deleted.stderr);
  assert.equal(JSON.parse((await run(['--root', root, 'pod', 'list', '--json'])).stdout), []);
  assert.equal(vmmProcessesUnder(root), []);
});

test.run();
