// Snapshot and restore on the built-in VMM with the freestanding test guest (vctest=count: it
// counts in memory and prints the count every 20 ms). A running guest is snapshotted through the
// control socket (the `snapshot` op: files written, VM stopped), then restored twice from the same
// files by `vc-vmm restore --detach`: each restored VM goes on counting from where the snapshot
// stopped it, without booting again. Damaged state and memory files, and a config for another
// machine, are refused with their own messages, leaving no process and no socket behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { vmmAlive, vmmControl } from '../helpers/vmm-control.js';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { requireTestGuestHost } from '../helpers/kvm-host.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const vcVmm = join(root, 'build/Release/vc-vmm');
const guest = join(root, 'build/Release/testguest/vctest.elf');
const dir = tempDir('vc-snap');
test.after(() => dir.remove());

requireTestGuestHost();

const memoryMiB = 64;
let tscKhz = 0;

function read(path: string) {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

// Whole lines only: the file may be read while the guest is halfway through one.
function counts(serial: string): number[] {
  return [...serial.matchAll(/^count (\d+)\n/gm)].map((m) => Number(m[1]));
}



// The pod's own wiring for a run: its control socket and serial file.
function config(name: string, extra: Record<string, unknown> = {}) {
  const runDir = join(dir.path, name);
  mkdirSync(runDir, { recursive: true });
  const cfg = {
    kernel: guest, memoryMiB, cmdline: `vctest=count tsc_khz=${tscKhz}`,
    serialOutput: join(runDir, 'serial.log'), controlSocket: join(runDir, 'ctl.sock'), ...extra,
  };
  writeFileSync(join(runDir, 'config.json'), JSON.stringify(cfg));
  return { path: join(runDir, 'config.json'), serial: cfg.serialOutput, ctl: cfg.controlSocket, log: join(runDir, 'vmm.log') };
}

async function stopAndWait(ctl: string, pid: number) {
  await vmmControl(ctl, { op: 'stop' }).catch(() => undefined);
  await waitFor(`vc-vmm ${pid} to exit`, () => !vmmAlive(pid), 10_000);
}

const snapDir = join(dir.path, 'snap');
let lastBefore = 0;

test('a running count guest is snapshotted through the control socket, and the VM stops', async () => {
  const caps = JSON.parse(spawnSync(vcVmm, ['caps'], { encoding: 'utf8' }).stdout);
  tscKhz = caps.tscKhz ?? 0;
  const c = config('source');
  const run = spawnSync(vcVmm, ['run', '--config', c.path, '--detach', '--log', c.log], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const { pid } = JSON.parse(run.stdout);
  try {
    await waitFor('three counts from the guest', () => counts(read(c.serial)).length >= 3);
    mkdirSync(snapDir);
    writeFileSync(join(dir.path, 'not-empty'), '');
    const refused = await vmmControl(c.ctl, { op: 'snapshot', dir: dir.path });
    assert.is(refused.ok, false);
    assert.match(refused.error.message, /is not empty/);
    assert.equal((await vmmControl(c.ctl, { op: 'snapshot' })).error.code, 'BAD_REQUEST');
    const reply = await vmmControl(c.ctl, { op: 'snapshot', dir: snapDir });
    assert.is(reply.ok, true, JSON.stringify(reply));
    assert.is(reply.state, 'stopped');
    console.log(`  capture: ${(reply.us.total / 1000).toFixed(1)} ms for ${memoryMiB} MiB (${JSON.stringify(reply.us)})`);
    await waitFor('the snapshotted VMM to exit', () => !vmmAlive(pid), 10_000);
    assert.not.ok(existsSync(c.ctl), 'the control socket is removed');
    const seen = counts(read(c.serial));
    lastBefore = seen[seen.length - 1] ?? 0;
    assert.ok(lastBefore > 0);
    const state = statSync(join(snapDir, 'state')), memory = statSync(join(snapDir, 'memory'));
    assert.is(state.mode & 0o777, 0o600);
    assert.is(memory.mode & 0o777, 0o600);
    assert.is(memory.size, 4096 + memoryMiB * 1024 * 1024);
    assert.is(reply.bytes.state, state.size);
    assert.is(reply.bytes.memory, memory.size);
    assert.match(read(c.log), /VM stopped: requested: snapshot taken to/);
  } finally {
    if (vmmAlive(pid)) process.kill(pid, 'SIGKILL');
  }
});

for (const round of [1, 2]) {
  test(`restore #${round} from the same files goes on counting from the snapshot, without booting`, async () => {
    const c = config(`restore-${round}`);
    const t0 = performance.now();
    const r = spawnSync(vcVmm, ['restore', '--state', join(snapDir, 'state'), '--memory', join(snapDir, 'memory'),
      '--config', c.path, '--detach', '--log', c.log], { encoding: 'utf8' });
    const detachedMs = performance.now() - t0;
    assert.is(r.status, 0, r.stderr);
    const { pid } = JSON.parse(r.stdout);
    try {
      await waitFor('a count from the restored guest', () => counts(read(c.serial)).length >= 1, 10_000);
      const firstCountMs = performance.now() - t0;
      await waitFor('three counts from the restored guest', () => counts(read(c.serial)).length >= 3, 10_000);
      const serial = read(c.serial);
      assert.not.match(serial, /vctest count boot=/, 'a restored guest does not boot again');
      const after = counts(serial);
      const first = after[0] ?? 0;
      assert.ok(first > lastBefore, `first count after restore ${first} > last before the snapshot ${lastBefore}`);
      for (let i = 1; i < after.length; i++) assert.ok(after[i]! > after[i - 1]!, `counts go up: ${after.join(' ')}`);
      const status = (await vmmControl(c.ctl, { op: 'status' })).status;
      assert.is(status.state, 'running');
      assert.is(status.restoredFrom, join(snapDir, 'state'));
      console.log(`  restore #${round}: vc-vmm restore --detach returned in ${detachedMs.toFixed(1)} ms, first count ` +
        `after ${firstCountMs.toFixed(1)} ms (counts ${lastBefore} -> ${first})`);
      await stopAndWait(c.ctl, pid);
      assert.match(read(c.log), /timing parts \(us\): .*"memorySample"/);
    } finally {
      if (vmmAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
}

// Each damaged input: a copy of the snapshot with one thing wrong, and the message it must give.
const damaged: [string, (state: string, memory: string) => void, RegExp][] = [
  ['a flipped byte in the state file', (state) => {
    const b = readFileSync(state);
    b[200] = b[200]! ^ 0x40;
    writeFileSync(state, b);
  }, /snapshot state file: checksum mismatch/],
  ['a truncated state file', (state) => truncateSync(state, 100), /total length is \d+ bytes but the file has only 100 \(truncated\)/],
  ['a truncated memory file', (_s, memory) => truncateSync(memory, 4096 + 1024 * 1024),
    /the file is 1052672 bytes, the snapshot says 67112960/],
  ['a changed page in the memory file', (_s, memory) => {
    const b = readFileSync(memory);
    b[4096 + 17] = b[4096 + 17]! ^ 1;  // guest page 0: in the sample
    writeFileSync(memory, b);
  }, /the CRC-32C of 64 sampled RAM pages is 0x[0-9a-f]+, the state file says 0x[0-9a-f]+ \(the memory file changed/],
  ['a damaged memory header', (_s, memory) => {
    const b = readFileSync(memory);
    b[0] = 0x58;
    writeFileSync(memory, b);
  }, /magic is not "VCSNAPMM": not a vc-vmm snapshot memory file/],
];

/** A copy of the snapshot in its own directory, damaged by `damage`. */
function damagedCopy(dirName: string, damage: (state: string, memory: string) => void) {
  const copyDir = join(dir.path, dirName);
  mkdirSync(copyDir, { recursive: true });
  const state = join(copyDir, 'state'), memory = join(copyDir, 'memory');
  copyFileSync(join(snapDir, 'state'), state);
  copyFileSync(join(snapDir, 'memory'), memory);
  damage(state, memory);
  return { state, memory };
}

for (const [what, damage, message] of damaged) {
  test(`restore refuses ${what}, leaving no process or socket`, () => {
    const name = what.replace(/\W+/g, '-');
    const { state, memory } = damagedCopy(`bad-${name}`, damage);
    const c = config(`run-${name}`);
    const r = spawnSync(vcVmm, ['restore', '--state', state, '--memory', memory, '--config', c.path, '--detach', '--log', c.log],
      { encoding: 'utf8' });
    assert.is(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stdout, '');
    assert.not.ok(existsSync(c.ctl), 'no control socket is left');
    assert.is(counts(read(c.serial)).length, 0);
  });
}

// `vc-vmm snapshot verify` reads both files whole: what restore refuses, and a change in a RAM page
// that restore's sample does not cover (guest page 1, between the first two of 64 samples).
const verify = (state: string, memory: string) => spawnSync(vcVmm, ['snapshot', 'verify', '--state', state, '--memory', memory], { encoding: 'utf8' });

test('snapshot verify: the snapshot as written passes, with its RAM size and CRC-32C', () => {
  const r = verify(join(snapDir, 'state'), join(snapDir, 'memory'));
  assert.is(r.status, 0, r.stderr);
  const answer = JSON.parse(r.stdout);
  assert.equal({ ok: answer.ok, vcpus: answer.vcpus, ramBytes: answer.ramBytes }, { ok: true, vcpus: 1, ramBytes: memoryMiB * 1024 * 1024 });
  assert.match(answer.ramCrc, /^0x[0-9a-f]{8}$/);
});

const unsampled: [string, (state: string, memory: string) => void, RegExp] = ['a changed page restore does not sample', (_s, memory) => {
  const b = readFileSync(memory);
  b[4096 + 4096 + 5] = b[4096 + 4096 + 5]! ^ 1;
  writeFileSync(memory, b);
}, /the CRC-32C of all 67108864 bytes of RAM is 0x[0-9a-f]{8}, the state file says 0x[0-9a-f]{8}/];
for (const [what, damage, message] of [...damaged, unsampled]) {
  test(`snapshot verify refuses ${what} (exit 1, the reason on stderr)`, () => {
    const { state, memory } = damagedCopy(`verify-${what.replace(/\W+/g, '-')}`, damage);
    const r = verify(state, memory);
    assert.is(r.status, 1, `${r.stdout}${r.stderr}`);
    assert.is(r.stdout, '');
    // verify checks all of RAM, so a sampled page's change is reported as the whole RAM's.
    assert.match(r.stderr, what === 'a changed page in the memory file' ? unsampled[2] : message);
  });
}

test('snapshot verify: a missing file or argument is named', () => {
  const missing = verify(join(dir.path, 'no-such-state'), join(snapDir, 'memory'));
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /state file .*no-such-state: No such file or directory/);
  const usage = spawnSync(vcVmm, ['snapshot', 'verify', '--state', join(snapDir, 'state')], { encoding: 'utf8' });
  assert.is(usage.status, 2);
  assert.match(usage.stderr, /--memory is required/);
  assert.is(spawnSync(vcVmm, ['snapshot', 'check'], { encoding: 'utf8' }).status, 2);
});

test('restore refuses a config for another machine, naming the field and both values', () => {
  const c = config('other-machine', { memoryMiB: 128 });
  const r = spawnSync(vcVmm, ['restore', '--state', join(snapDir, 'state'), '--memory', join(snapDir, 'memory'),
    '--config', c.path], { encoding: 'utf8' });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /restore: config.memoryMiB is 128, but the snapshot's VM has 64/);
  const usage = spawnSync(vcVmm, ['restore', '--config', c.path], { encoding: 'utf8' });
  assert.is(usage.status, 2);
  assert.match(usage.stderr, /vc-vmm restore: restore needs --state and --memory/);
});

test('jailed: the snapshot op writes only into the --snapshot-dir opened before the jail; a jailed restore runs on', async () => {
  const c = config('jailed');
  const jailRoot = join(dir.path, 'jail-root'), jailSnap = join(dir.path, 'jail-snap');
  mkdirSync(jailRoot);
  mkdirSync(jailSnap);
  spawnSync('chown', ['65534:65534', jailSnap]);  // the jail's user writes the files
  const run = spawnSync(vcVmm, ['run', '--config', c.path, '--detach', '--log', c.log, '--jail', jailRoot,
    '--snapshot-dir', jailSnap], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const { pid } = JSON.parse(run.stdout);
  try {
    await waitFor('counts from the jailed guest', () => counts(read(c.serial)).length >= 2);
    const elsewhere = await vmmControl(c.ctl, { op: 'snapshot', dir: snapDir });
    assert.match(elsewhere.error.message, new RegExp(`snapshot: dir ${snapDir} is not ${jailSnap}, the --snapshot-dir this VMM opened`));
    const reply = await vmmControl(c.ctl, { op: 'snapshot', dir: jailSnap });
    assert.is(reply.ok, true, JSON.stringify(reply));
    await waitFor('the jailed VMM to exit', () => !vmmAlive(pid), 10_000);
  } finally {
    if (vmmAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  const before = counts(read(c.serial)).pop() ?? 0;
  const r2 = config('jailed-restore');
  const root2 = join(dir.path, 'jail-root2');
  mkdirSync(root2);
  const restored = spawnSync(vcVmm, ['restore', '--state', join(jailSnap, 'state'), '--memory', join(jailSnap, 'memory'),
    '--config', r2.path, '--detach', '--log', r2.log, '--jail', root2], { encoding: 'utf8' });
  assert.is(restored.status, 0, restored.stderr);
  const pid2 = JSON.parse(restored.stdout).pid;
  try {
    await waitFor('a count from the jailed restore', () => counts(read(r2.serial)).length >= 1);
    assert.ok((counts(read(r2.serial))[0] ?? 0) > before);
    const refused = await vmmControl(r2.ctl, { op: 'snapshot', dir: snapDir });
    assert.match(refused.error.message, /this VMM runs jailed, where the host's paths are out of reach; start it with --snapshot-dir DIR/);
    await stopAndWait(r2.ctl, pid2);
  } finally {
    if (vmmAlive(pid2)) process.kill(pid2, 'SIGKILL');
  }
});

test('no vc-vmm of this file is left running', async () => {
  await sleep(50);
  const ps = spawnSync('pgrep', ['-af', dir.path], { encoding: 'utf8' });
  assert.is(ps.stdout.trim(), '', ps.stdout);
});

test.run();
