// Crash-only behaviour seen from the command line (issue 12): a `virtc pod start` killed part-way,
// corrupt and newer records, a VMM killed under a running pod, and `virtc gc`. Two VM boots.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitForExit } from '../../src/host/process.js';
import { alive as isAlive, prefix as groupPrefix, removeLeftoverGroupsAfter, support as cgroups } from '../helpers/cgroups.js';
import { teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { testHypervisor as hypervisor } from '../helpers/hypervisor.js';

const virtc = fileURLToPath(new URL('../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vcr');
const root = tmp.path;
// gc sweeps the image cache too: point it at an empty one so the test never touches the real cache.
const emptyCache = tempDir('vcrc');
const pods = `${root}/pods`;
const sleepers: ChildProcess[] = [];

/** A stand-in for a VMM of pod `id` (no VM boot): a node process whose command line names its directory. */
async function fakeVmm(id: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', `${pods}/${id}/qmp.sock`], { stdio: 'ignore' });
  sleepers.push(child);
  await waitFor(`the stand-in VMM of ${id}`, () => { try { return readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes(`${pods}/${id}/`); } catch { return false; } });
  return child.pid!;
}

interface Result { code: number | null; stdout: string; stderr: string }

function spawnVirtc(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [virtc, '--root', root, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawnVirtc(args, env);
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin!.end();
  });
}

const gc = (...args: string[]) => run(['gc', ...args], { VC_CACHE_DIR: emptyCache.path });
const stateOf = (id: string) => JSON.parse(readFileSync(`${pods}/${id}/state.json`, 'utf8')) as { state: string; version: number };
/** VMM processes (not node) whose command line names the pod's directory. */
const vmmsOf = (id: string) => vmmProcessesUnder(`${pods}/${id}/`);
/** The `pod list` row of `id`, split on runs of 2+ spaces (the table's column gaps). */
function row(listing: string, id: string): string[] {
  const line = listing.split('\n').find((l) => l.split(/\s+/)[0] === id);
  assert.ok(line, `pod list shows ${id}:\n${listing}`);
  return line!.split(/\s{2,}/);
}

removeLeftoverGroupsAfter(() => {});
test.after(async () => {
  for (const s of sleepers) if (s.exitCode === null) s.kill('SIGKILL');
  await teardownRoot(root);
  tmp.remove();
  emptyCache.remove();
});

test('a corrupt state.json: listed as unknown with the file and the parse error, refused, removed by --force', async () => {
  for (const id of ['healthy', 'broken']) {
    const created = await run(['pod', 'create', '--id', id, '--hypervisor', hypervisor, '--memory', '256']);
    assert.is(created.code, 0, created.stderr);
  }
  const file = `${pods}/broken/state.json`;
  const text = readFileSync(file, 'utf8').slice(0, 40); // cut short, as by a full disk
  const vmm = await fakeVmm('broken'); // what the record can no longer tell about
  writeFileSync(file, text);
  const parseError = (() => { try { JSON.parse(text); return ''; } catch (err) { return (err as Error).message; } })();
  assert.ok(parseError);

  const list = await run(['pod', 'list']);
  assert.is(list.code, 0, list.stderr);
  assert.equal(row(list.stdout, 'healthy').slice(0, 3), ['healthy', 'ready', hypervisor]);
  const broken = row(list.stdout, 'broken');
  assert.equal(broken.slice(0, 2), ['broken', 'unknown']);
  const note = broken.at(-1)!;
  assert.ok(note.includes(file), `NOTE names the file: ${note}`);
  assert.ok(note.includes(parseError), `NOTE has the parse error "${parseError}": ${note}`);

  const json = await run(['pod', 'list', '--json']);
  assert.is(json.code, 0, json.stderr);
  const entries = JSON.parse(json.stdout) as Array<{ id: string; state: string; reason?: string; stateFile?: string }>;
  assert.equal(entries.map((e) => [e.id, e.state]).sort(), [['broken', 'unknown'], ['healthy', 'ready']]);
  const entry = entries.find((e) => e.id === 'broken')!;
  assert.is(entry.stateFile, file);
  assert.ok(entry.reason!.includes(file) && entry.reason!.includes(parseError), entry.reason);

  const status = await run(['pod', 'status', '--id', 'broken']);
  assert.is(status.code, 1);
  assert.ok(status.stderr.includes(file), status.stderr);
  assert.match(status.stderr, /STATE_CORRUPT/);

  const refused = await run(['pod', 'delete', '--id', 'broken']);
  assert.is(refused.code, 1);
  assert.ok(refused.stderr.includes(file), refused.stderr);
  assert.match(refused.stderr, /--force/);
  assert.ok(existsSync(`${pods}/broken`));
  assert.ok(isAlive(vmm), 'a refused delete kills nothing');

  const forced = await run(['pod', 'delete', '--id', 'broken', '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.not.ok(existsSync(`${pods}/broken`));
  assert.ok(await waitForExit(vmm, 5000), 'the process naming the pod directory is killed');
  const after = JSON.parse((await run(['pod', 'list', '--json'])).stdout) as Array<{ id: string; state: string }>;
  assert.equal(after.map((e) => [e.id, e.state]), [['healthy', 'ready']]);
});

test('a record from a newer version: STATE_UNSUPPORTED, refused, removed by --force', async () => {
  const created = await run(['pod', 'create', '--id', 'future', '--hypervisor', hypervisor, '--memory', '256']);
  assert.is(created.code, 0, created.stderr);
  const file = `${pods}/future/state.json`;
  writeFileSync(file, JSON.stringify({ ...stateOf('future'), version: 99, somethingNew: { x: 1 } }));
  const vmm = await fakeVmm('future');

  const list = await run(['pod', 'list', '--json']);
  assert.is(list.code, 0, list.stderr);
  const entry = (JSON.parse(list.stdout) as Array<{ id: string; state: string; reason?: string }>).find((e) => e.id === 'future');
  assert.is(entry?.state, 'unknown');
  assert.match(entry!.reason!, /version 99/);

  const status = await run(['pod', 'status', '--id', 'future']);
  assert.is(status.code, 1);
  assert.match(status.stderr, /STATE_UNSUPPORTED/);
  assert.ok(status.stderr.includes(file), status.stderr);
  const refused = await run(['pod', 'delete', '--id', 'future']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /STATE_UNSUPPORTED/);
  assert.ok(existsSync(`${pods}/future`));
  assert.is(stateOf('future').version, 99, 'the newer record is left as it was');
  assert.ok(isAlive(vmm), 'a refused delete kills nothing');

  const forced = await run(['pod', 'delete', '--id', 'future', '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.not.ok(existsSync(`${pods}/future`));
  assert.ok(await waitForExit(vmm, 5000), 'the process naming the pod directory is killed');
  assert.is((await run(['pod', 'delete', '--id', 'healthy'])).code, 0);
});

test('pod start killed with SIGKILL 2 s in: status undoes the start, delete leaves nothing', async () => {
  const created = await run(['pod', 'create', '--id', 'orphan', '--hypervisor', hypervisor, '--memory', '256']);
  assert.is(created.code, 0, created.stderr);
  const began = Date.now();
  const start = spawnVirtc(['pod', 'start', '--id', 'orphan']);
  start.stdin!.end();
  const exited = new Promise((resolve) => start.on('exit', resolve));
  // The report killed it 2 s in, with QEMU up and the guest still booting. An idle TCG boot here
  // takes ≈ 2.8 s to agent ready, so 2 s is cutting it fine: kill as soon as the VMM is up, and at
  // the latest 2 s in.
  await waitFor('a VMM process naming the pod directory', () => vmmsOf('orphan').length > 0 || start.exitCode !== null, 60_000);
  await sleep(Math.min(200, Math.max(0, 2000 - (Date.now() - began))));
  assert.is(start.exitCode, null, 'pod start still running when killed');
  start.kill('SIGKILL');
  await exited;
  const leftVmms = vmmsOf('orphan');
  assert.is(stateOf('orphan').state, 'starting', 'the kill came in the middle of the start');
  assert.ok(leftVmms.length > 0, 'the killed start left a VMM running (the case the user reported)');

  const status = await run(['pod', 'status', '--id', 'orphan', '--json']);
  assert.is(status.code, 0, status.stderr);
  const shown = JSON.parse(status.stdout) as { state: string; pid: number | null };
  assert.equal([shown.state, shown.pid], ['ready', null]);
  assert.equal(vmmsOf('orphan'), [], 'no VMM of the pod is left');
  for (const pid of leftVmms) assert.not.ok(isAlive(pid), `VMM ${pid} is gone`);
  assert.is(stateOf('orphan').state, 'ready');

  const deleted = await run(['pod', 'delete', '--id', 'orphan']);
  assert.is(deleted.code, 0, deleted.stderr);
  assert.not.ok(existsSync(`${pods}/orphan`));
  assert.equal(vmmProcessesUnder(root), []);
});

test('gc leaves a running pod alone; its VMM killed: pod list says "VMM died", --json vmmDied', async () => {
  assert.is((await run(['pod', 'create', '--id', 'victim', '--hypervisor', hypervisor, '--memory', '256'])).code, 0);
  const started = await run(['pod', 'start', '--id', 'victim', '--json']);
  assert.is(started.code, 0, started.stderr);
  const pid = (JSON.parse(started.stdout) as { pid: number }).pid;
  assert.ok(pid > 0 && isAlive(pid));
  // gc leaves a running pod's VMM alone (its command line names other paths before the pod's).
  const dry = await gc('--dry-run', '--json');
  assert.equal(JSON.parse(dry.stdout), { dryRun: true, items: [] }, dry.stdout);
  const swept = await gc('--json');
  assert.equal(JSON.parse(swept.stdout), { dryRun: false, items: [] }, swept.stdout);
  assert.ok(isAlive(pid), 'gc left the running VMM alone');
  process.kill(pid, 'SIGKILL');
  assert.ok(await waitForExit(pid, 5000), 'the VMM exited');

  const list = await run(['pod', 'list']);
  assert.is(list.code, 0, list.stderr);
  const victim = row(list.stdout, 'victim');
  assert.is(victim[1], 'stopped');
  assert.match(victim.at(-1)!, new RegExp(`^VMM died: .*pid ${pid}`));
  const json = JSON.parse((await run(['pod', 'list', '--json'])).stdout) as Array<{ id: string; state: string; vmmDied: boolean }>;
  assert.equal(json.map((p) => [p.id, p.state, p.vmmDied]), [['victim', 'stopped', true]]);
  assert.equal(vmmsOf('victim'), []);
});

test('virtc gc --dry-run lists each leak and removes nothing; gc removes each; a second gc finds nothing', async () => {
  // The stopped pod of the last test, with a stale QMP socket file left in its directory.
  assert.is(stateOf('victim').state, 'stopped', 'the previous test left a stopped pod');
  const socket = `${pods}/victim/qmp.sock`;
  writeFileSync(socket, '');
  // A leaked "VMM" of a pod whose directory is gone: a sleeper whose argv names its socket.
  const leaked = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', `${pods}/gone/qmp.sock`], { stdio: 'ignore' });
  sleepers.push(leaked);
  await waitFor('the sleeper to start', () => { try { return readFileSync(`/proc/${leaked.pid}/cmdline`, 'utf8').includes('gone'); } catch { return false; } });
  const old = new Date(Date.now() - 120_000);
  const newDir = `${pods}/.new-x-1234`, deletedDir = `${pods}/.deleted-y-1234`, temp = `${pods}/victim/.state.json.abc.tmp`;
  for (const dir of [newDir, deletedDir]) { mkdirSync(dir); writeFileSync(`${dir}/state.json`, '{}'); utimesSync(dir, old, old); }
  writeFileSync(temp, '{"half":');
  utimesSync(temp, old, old);
  // A cgroup under virtcontainers/ whose process names a pod directory that is gone (on the
  // built-in VMM, a VMM's own group): where this host has a cgroup hierarchy.
  const hierarchy = cgroups.version === 2 ? cgroups.root : cgroups.version === 1 ? cgroups.roots.pids : undefined;
  const group = hierarchy ? `${hierarchy}/virtcontainers/${groupPrefix}-gc` : undefined;
  let grouped: ChildProcess | undefined;
  if (group) {
    mkdirSync(group, { recursive: true });
    grouped = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', `${pods}/gone-cg/qmp.sock`], { stdio: 'ignore' });
    sleepers.push(grouped);
    writeFileSync(`${group}/cgroup.procs`, String(grouped.pid));
  } else {
    console.log(`\nSKIP the cgroup part of "virtc gc …": ${'reason' in cgroups ? cgroups.reason : 'no cgroup hierarchy'}`);
  }
  // A fresh temp file is some write in progress: left alone.
  const fresh = `${pods}/victim/.state.json.fresh.tmp`;
  writeFileSync(fresh, '');

  const everything = () => [socket, newDir, deletedDir, temp, fresh].filter(existsSync).length === 5 && isAlive(leaked.pid!) &&
    (!group || (existsSync(group) && isAlive(grouped!.pid!)));
  const dry = await gc('--dry-run');
  assert.is(dry.code, 0, dry.stderr);
  assert.ok(everything(), 'the dry run removed nothing');
  const lines = dry.stdout.split('\n');
  const lineWith = (...parts: string[]) => lines.find((l) => parts.every((p) => l.includes(p)));
  assert.match(lines[0]!, /^KIND\s+WOULD REMOVE\s+WHAT/);
  assert.ok(lineWith('process', `process ${leaked.pid}`, 'pod gone', 'directory is gone'), dry.stdout);
  assert.ok(lineWith('pod', 'pod victim is stopped', socket), dry.stdout);
  assert.ok(lineWith('directory', 'create was cut short'), dry.stdout);
  assert.ok(lineWith('directory', 'removal was cut short'), dry.stdout);
  assert.ok(lineWith('file', 'temp file'), dry.stdout);
  assert.not.ok(dry.stdout.includes('fresh'), dry.stdout);
  if (group) {
    assert.ok(lineWith('cgroup', `cgroup ${groupPrefix}-gc of pod gone-cg`, 'directory is gone'), dry.stdout);
    assert.ok(lineWith('process', `process ${grouped!.pid}`, 'pod gone-cg'), dry.stdout);
  }

  const dryJson = await gc('--dry-run', '--json');
  assert.is(dryJson.code, 0, dryJson.stderr);
  const report = JSON.parse(dryJson.stdout) as { dryRun: boolean; items: Array<{ kind: string; what: string; path?: string; pid?: number; removed: boolean }> };
  assert.is(report.dryRun, true);
  const cgroupKinds = group ? ['cgroup'] : [];
  assert.equal(report.items.map((i) => i.kind).sort(), [...cgroupKinds, 'directory', 'directory', 'file', 'pod', 'process', ...(group ? ['process'] : [])]);
  assert.ok(report.items.every((i) => !i.removed));
  assert.equal(report.items.filter((i) => i.kind === 'process').map((i) => i.pid).sort(), [leaked.pid, ...(group ? [grouped!.pid] : [])].sort());
  assert.equal(report.items.filter((i) => i.kind !== 'process').map((i) => i.path).sort(), [newDir, deletedDir, `${pods}/victim`, temp, ...(group ? [group] : [])].sort());
  assert.ok(everything(), 'the JSON dry run removed nothing');

  const swept = await gc('--json');
  assert.is(swept.code, 0, swept.stderr);
  const done = JSON.parse(swept.stdout) as typeof report;
  assert.is(done.dryRun, false);
  // The grouped process goes with its group: one item for both.
  assert.equal(done.items.map((i) => [i.kind, i.removed]).sort(), [...cgroupKinds.map((k) => [k, true]), ['directory', true], ['directory', true], ['file', true], ['pod', true], ['process', true]]);
  assert.ok(await waitForExit(leaked.pid!, 5000), 'the leaked process is killed');
  if (group) {
    assert.ok(await waitForExit(grouped!.pid!, 5000), 'the process in the leaked cgroup is killed');
    assert.not.ok(existsSync(group), `cgroup ${group} removed`);
  }
  for (const path of [socket, newDir, deletedDir, temp]) assert.not.ok(existsSync(path), `${path} removed`);
  assert.ok(existsSync(fresh), 'the fresh temp file is left');
  assert.is(stateOf('victim').state, 'stopped', 'the pod itself stays');

  const again = await gc();
  assert.is(again.code, 0, again.stderr);
  assert.is(again.stdout.trim(), 'nothing to collect');
  const againJson = JSON.parse((await gc('--json')).stdout) as typeof report;
  assert.equal(againJson, { dryRun: false, items: [] });

  assert.is((await run(['pod', 'delete', '--id', 'victim'])).code, 0);
  assert.not.ok(existsSync(`${pods}/victim`));
  assert.equal(vmmProcessesUnder(root), []);
});

test.run();
