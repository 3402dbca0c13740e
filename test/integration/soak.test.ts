// vc-test: beside-unit-tests
// Concurrency soak (issue 12, item 6): 8 processes do random create/start/enter/createContainer/
// stop/delete on 4 pod ids for a bounded time (VC_SOAK_MS, default 2 min), two of them are SIGKILLed
// at random moments (and replaced). Only the expected refusals of a busy, missing or wrongly-placed
// pod may fail an op; afterwards every pod agrees with its VMM and its container records with the
// pod, and deleting everything (force) leaves no process, cgroup, directory or socket.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deletePod, gc, listContainers, podStatus } from '../../src/index.js';
import { podCgroupPaths } from '../../src/host/cgroup.js';
import { podCgroupName } from '../../src/hypervisor/kvm/kvm.js';
import { teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/wait.js';
import { alive } from '../helpers/cgroups.js';
import { testHypervisor as hypervisor } from '../helpers/hypervisor.js';

const SOAK_MS = Number(process.env.VC_SOAK_MS) || 120_000;
const WORKERS = 8;
const POD_IDS = ['s0', 's1', 's2', 's3'];
/** How long workers get to finish the op in hand after the soak time: a lock wait (30 s) and a boot (bounded at 90 s below); normally a few seconds. */
const WIND_DOWN_MS = 150_000;
const api = fileURLToPath(new URL('../../src/index.js', import.meta.url));
const tmp = tempDir('vcs');
const root = tmp.path;
const pods = join(root, 'pods');
const emptyCache = tempDir('vcsc'); // gc also sweeps an image cache: never the real one

/** What an enter may meet when its pod is stopped under it. */
const AGENT_GONE = new Set(['AGENT_CLOSED', 'AGENT_UNREACHABLE', 'AGENT_CONNECT_FAILED']);
/** Refusals a caller must expect when others work on the same pods. */
const EXPECTED = new Set([
  'POD_EXISTS', 'POD_NOT_FOUND', 'POD_RUNNING', 'POD_NOT_RUNNING', 'ILLEGAL_TRANSITION', 'LOCK_TIMEOUT',
  'CONTAINER_EXISTS', 'CONTAINER_NOT_FOUND', 'CONTAINER_RUNNING',
]);

// One worker: random ops on random pods until the deadline, one JSON line per op begun and ended.
const worker = `
import * as vc from ${JSON.stringify(api)};
const [root, hypervisor, deadline, ids, cacheDir] = [process.argv[1], process.argv[2], Number(process.argv[3]), process.argv[4].split(','), process.argv[5]];
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const o = { root };
const ops = {
  create: (id) => vc.createPod({ id, hypervisor, memoryMiB: 256 }, o),
  start: (id) => vc.startPod(id, { ...o, bootTimeoutMs: 90000 }),
  enter: async (id) => {
    const p = await vc.enterPod(id, ['true'], o);
    p.stdout.resume(); p.stderr.resume(); p.stdin.end();
    const status = await p.wait();
    if (status.exitCode !== 0) throw Object.assign(new Error('true exited ' + JSON.stringify(status)), { code: 'ENTER_NONZERO' });
  },
  createContainer: (id) => vc.createContainer(id, { id: pick(['c0', 'c1']), command: ['sleep', '1000'] }, o),
  deleteContainer: (id) => vc.deleteContainer(id, pick(['c0', 'c1']), o),
  stop: (id) => vc.stopPod(id, o),
  delete: (id) => vc.deletePod(id, o),
  status: (id) => vc.podStatus(id, o),
  // The sweeper running among busy callers must take nothing of theirs (its own image cache: empty).
  gc: async () => {
    const report = await vc.gc({ root, cacheDir });
    const failed = report.items.filter((i) => i.error);
    if (failed.length) throw Object.assign(new Error(JSON.stringify(failed)), { code: 'GC_FAILED' });
    return report;
  },
};
// Not every op a start: boots are slow here, and most ops want a pod that exists or runs.
// Creates and deletes weigh less than starts so that pods run for a good part of the time.
const mix = [...Array(2).fill('create'), ...Array(3).fill('start'), ...Array(3).fill('enter'), ...Array(2).fill('createContainer'),
  'deleteContainer', ...Array(2).fill('stop'), 'delete', 'status', 'gc'];
const say = (x) => process.stdout.write(JSON.stringify(x) + '\\n');
while (Date.now() < deadline) {
  const op = pick(mix), id = pick(ids), t0 = Date.now();
  say({ begin: op, id, t0 });
  try {
    const result = await ops[op](id);
    say({ op, id, ok: true, t0, ms: Date.now() - t0, ...(op === 'gc' && result.items.length ? { swept: result.items.map((i) => i.what) } : {}) });
  } catch (err) {
    say({ op, id, ok: false, t0, ms: Date.now() - t0, code: err?.code ?? 'NO_CODE', message: String(err?.message ?? err) });
  }
  await new Promise((r) => setTimeout(r, Math.random() * 300));
}
`;

interface OpLine { begin?: string; op?: string; id: string; ok?: boolean; t0: number; ms?: number; code?: string; message?: string; swept?: string[] }
interface Worker { n: number; child: ChildProcess; lines: OpLine[]; killed: boolean; exit: Promise<{ code: number | null; signal: string | null }>; stderr: string }

function startWorker(n: number, deadline: number): Worker {
  const child = spawn(process.execPath, ['--input-type=module', '-e', worker, root, hypervisor, String(deadline), POD_IDS.join(','), emptyCache.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const w: Worker = { n, child, lines: [], killed: false, stderr: '', exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))) };
  let rest = '';
  child.stdout!.on('data', (d) => {
    rest += d;
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const part of parts) if (part) w.lines.push(JSON.parse(part) as OpLine);
  });
  child.stderr!.on('data', (d) => { w.stderr += d; });
  return w;
}

/** Every file and directory under `dir`, and which of them are sockets. */
function walk(dir: string): { all: string[]; sockets: string[] } {
  const all: string[] = [], sockets: string[] = [];
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const path = join(dir, name);
    const st = lstatSync(path);
    all.push(path);
    if (st.isSocket()) sockets.push(path);
    if (st.isDirectory()) { const sub = walk(path); all.push(...sub.all); sockets.push(...sub.sockets); }
  }
  return { all, sockets };
}

/** Any live process (node or VMM) whose command line names `marker`, other than this one. */
function processesNaming(marker: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (argv.includes(marker) && alive(Number(entry))) found.push(`${entry}: ${argv.split('\0').join(' ').slice(0, 160)}`);
    } catch { /* gone */ }
  }
  return found;
}

test.after(async () => {
  await teardownRoot(root);
  for (const id of POD_IDS) await deletePod(id, { root, force: true }).catch(() => {});
  tmp.remove();
  emptyCache.remove();
});

test(`soak: ${WORKERS} workers, ${POD_IDS.length} pods, ${SOAK_MS} ms, two workers SIGKILLed`, async () => {
  const began = Date.now();
  const deadline = began + SOAK_MS;
  const workers: Worker[] = [];
  for (let n = 0; n < WORKERS; n++) workers.push(startWorker(n, deadline));

  // Two kills at random moments, one in each half; each killed worker is replaced.
  const kills: string[] = [];
  for (const [lo, hi] of [[0.15, 0.45], [0.55, 0.85]] as const) {
    await sleep(Math.max(0, began + SOAK_MS * (lo + Math.random() * (hi - lo)) - Date.now()));
    // Preferably one in the middle of an op: a kill between ops tests little.
    const live = workers.filter((w) => !w.killed && w.child.exitCode === null);
    const busy = live.filter((w) => w.lines.at(-1)?.begin);
    const from = busy.length > 0 ? busy : live;
    const victim = from[Math.floor(Math.random() * from.length)]!;
    const doing = [...victim.lines].reverse().find((l) => l.begin);
    const finished = doing && victim.lines.at(-1) !== doing;
    victim.killed = true;
    victim.child.kill('SIGKILL');
    kills.push(`worker ${victim.n} at ${((Date.now() - began) / 1000).toFixed(1)} s ${finished || !doing ? 'between ops' : `in ${doing.begin} ${doing.id}`}`);
    workers.push(startWorker(workers.length, deadline));
  }

  // Workers stop beginning ops at the deadline and finish the one in hand.
  const windDown = Promise.all(workers.map((w) => w.exit));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    windDown.then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()) + WIND_DOWN_MS); }),
  ]);
  clearTimeout(timer);
  const hung = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  for (const w of hung) w.child.kill('SIGKILL');
  const soakEnd = Date.now();

  // Tally: ops per kind, errors per code; anything but an expected refusal is a failure.
  const perOp = new Map<string, { ok: number; failed: number }>();
  const perCode = new Map<string, number>();
  const unexpected: string[] = [];
  let excused = 0;
  // An enter whose pod was stopped (or its stop begun by a worker then killed) while it ran loses
  // its agent: that is the stop's doing, not a fault. Any other agent error is.
  const ended = workers.flatMap((w) => w.lines.filter((l) => l.op === 'stop' && l.ok).map((l) => ({ id: l.id, from: l.t0, to: l.t0 + l.ms! })));
  for (const w of workers.filter((w) => w.killed)) {
    const last = w.lines.at(-1);
    if (last?.begin === 'stop') ended.push({ id: last.id, from: last.t0, to: Infinity });
  }
  const vmmEndedDuring = (l: OpLine) => ended.some((e) => e.id === l.id && e.from <= l.t0 + l.ms! && e.to >= l.t0);
  for (const w of workers) {
    for (const line of w.lines) {
      if (!line.op) continue;
      const tally = perOp.get(line.op) ?? { ok: 0, failed: 0 };
      perOp.set(line.op, tally);
      if (line.ok) { tally.ok += 1; continue; }
      tally.failed += 1;
      perCode.set(line.code!, (perCode.get(line.code!) ?? 0) + 1);
      if (line.op === 'enter' && AGENT_GONE.has(line.code!) && vmmEndedDuring(line)) { excused += 1; continue; }
      if (!EXPECTED.has(line.code!)) unexpected.push(`worker ${w.n}: ${line.op} ${line.id} after ${line.ms} ms: [${line.code}] ${line.message}`);
    }
    const { code, signal } = await w.exit;
    if (!w.killed && (code !== 0 || signal)) unexpected.push(`worker ${w.n} exited ${code ?? signal}${hung.includes(w) ? ' (hung past the wind-down; killed)' : ''}: ${w.stderr.slice(-1000)}`);
  }
  const sweptDuring = workers.flatMap((w) => w.lines.flatMap((l) => l.swept ?? []));
  // Summarised by what each was, without pod ids and paths (mostly the lease files stops leave).
  const sweptKinds = new Map<string, number>();
  for (const what of sweptDuring) for (const part of what.replace(/pod s\d\b/g, 'pod X').replace(/\/\S+\//g, '').split(/: |; /)) sweptKinds.set(part, (sweptKinds.get(part) ?? 0) + 1);
  console.log(`\n# gc during the soak swept ${sweptDuring.length} item(s): ${[...sweptKinds].map(([k, n]) => `${k} ×${n}`).join(', ') || 'nothing'}`);
  console.log(`# soak: ${((soakEnd - began) / 1000).toFixed(1)} s (${SOAK_MS} ms + wind-down), ${workers.length} workers; killed: ${kills.join('; ')}`);
  console.log(`# ops: ${[...perOp].sort().map(([op, t]) => `${op} ${t.ok} ok/${t.failed} refused`).join(', ')}`);
  console.log(`# errors: ${[...perCode].sort().map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}${excused ? ` (${excused} agent errors of enters whose pod was being stopped)` : ''}`);
  assert.not.ok(timedOut && hung.length > 0, `workers still busy ${WIND_DOWN_MS} ms after the soak time: ${hung.map((w) => w.n).join(', ')}`);
  assert.equal(unexpected, [], 'only expected refusals');
  const done = [...perOp.values()].reduce((n, t) => n + t.ok, 0);
  assert.ok((perOp.get('start')?.ok ?? 0) > 0 && (perOp.get('create')?.ok ?? 0) > 0, 'some pods were created and started');
  assert.ok(done > 20, `ops done: ${done}`);

  // Every surviving pod agrees with its VMM, and its containers with the pod (podStatus settles
  // steps that a killed worker left, as any next caller would).
  const survivors = readdirSync(pods).filter((name) => !name.startsWith('.'));
  const report: string[] = [];
  for (const id of survivors) {
    const status = await podStatus(id, { root });
    const vmms = vmmProcessesUnder(join(pods, id) + '/').filter(alive);
    const containers = await listContainers(id, { root });
    report.push(`${id} ${status.state} vmm=${vmms.join(',') || '-'} containers=${containers.map((c) => `${c.id}:${c.state}`).join(',') || '-'}`);
    if (status.state === 'running' || status.state === 'paused') {
      assert.equal(vmms, [status.pid], `pod ${id} is ${status.state}: exactly its recorded VMM runs`);
      for (const c of containers) assert.ok(['created', 'running', 'stopped'].includes(c.state), `container ${id}/${c.id} is ${c.state} in a running pod`);
    } else {
      assert.ok(['ready', 'stopped'].includes(status.state), `pod ${id} settled, not ${status.state}`);
      assert.equal(vmms, [], `pod ${id} is ${status.state}: no VMM runs`);
      for (const c of containers) assert.is(c.state, 'stopped', `container ${id}/${c.id} of a ${status.state} pod`);
    }
  }
  console.log(`# survivors: ${report.join('; ') || 'none'}`);
  // No VMM outside those pods, and nothing for gc but the debris of killed writes (temp files,
  // half-made or half-removed directories) and the agent port lease files a stop leaves on purpose
  // (qemu.ts): no process, cgroup, socket or pid file.
  const debris = (i: { kind: string; what: string }) => i.kind === 'file' || i.kind === 'directory' || (i.kind === 'pod' && /still has: lease [^;]+(; lease [^;]+)*$/.test(i.what));
  const running = (await Promise.all(survivors.map((id) => podStatus(id, { root })))).filter((p) => p.pid !== null).map((p) => p.pid!);
  assert.equal(vmmProcessesUnder(pods + '/').filter(alive).sort(), running.sort(), 'every VMM under the root belongs to a running pod');
  const swept = await gc({ root, graceMs: 0, cacheDir: emptyCache.path });
  if (swept.items.length) console.log(`# gc after the soak: ${swept.items.map((i) => `${i.kind}: ${i.what}${i.removed ? '' : ` (not removed: ${i.error})`}`).join('; ')}`);
  assert.equal(swept.items.filter((i) => !debris(i)), [], 'gc finds no leaked process, cgroup, socket or pid file');
  assert.ok(swept.items.every((i) => i.removed), 'gc removed the debris');

  // Delete everything by force: nothing of any pod may be left.
  for (const id of survivors) await deletePod(id, { root, force: true });
  assert.equal(processesNaming(root), [], 'no process names the root');
  for (const id of POD_IDS) {
    for (const group of podCgroupPaths(podCgroupName(id, { dir: join(pods, id) }))) assert.not.ok(existsSync(group), `cgroup ${group} left`);
  }
  const left = walk(root);
  assert.equal(left.sockets, [], 'no sockets');
  assert.equal(readdirSync(pods), [], `no pod directories or temp files left: ${left.all.join(', ')}`);
  console.log(`# whole soak test: ${((Date.now() - began) / 1000).toFixed(1)} s`);
});

test.run();
