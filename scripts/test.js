#!/usr/bin/env node
// Runs every compiled test file in its own process and prints one closing line, since uvu prints
// per-file totals only. Usage: node scripts/test.js [unit|native|integration|nested|FILTER...]
//
// Host files (test/unit, test/native, test/integration) run here. test/kvm (the VMM on KVM with
// its freestanding test guests) runs here too where this host can run those guests (real KVM or
// PVM; test/helpers/kvm-host.ts), else in L1. test/nested runs last, inside one L1 VM of the
// nested-KVM harness (test/harness/l1.ts; docs/nested-harness.md), which runs
// `node scripts/test.js nested-inside [--with-kvm] [FILTER...]` there and reports its own closing
// line; its counts are added to ours. Each file's heading says where it ran: [L0] or [L1].
// With no filter everything runs; `nested` runs the nested phase only.
import { spawnSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
let filters = process.argv.slice(2);
const inside = filters[0] === 'nested-inside';
if (inside) filters = filters.slice(1);
const kvmInside = inside && filters[0] === '--with-kvm';
if (kvmInside) filters = filters.slice(1);
const where = process.env.VC_NESTED_L1 === '1' ? 'L1' : 'L0';
// A file that hangs is killed (and counted as a failure, since uvu never printed its summary)
// rather than holding up the rest of the run; the slowest files take ≈ 3 min here (in L1 too).
const FILE_TIMEOUT_MS = Number(process.env.VC_TEST_FILE_TIMEOUT_MS) || (where === 'L1' ? 4 : 8) * 60 * 1000;
// How long L1 may stay silent before the host takes it for stopped (nestedPhase). The runner in L1
// prints HEARTBEAT every 20 s whatever its files do (a hung file is its own timeout's business), so
// silence means L1 itself stopped: its kernel hung (docs/nested-harness.md). It was 300 s with no
// heartbeat, which a CI run that lost an L1 paid on top of the rerun.
const L1_SILENCE_MS = Number(process.env.VC_L1_SILENCE_MS) || 120 * 1000;
// In L1 a pod's guest sometimes triple-faults while the same code boots and restores fine beside
// it (docs/nested-harness.md, "Guests that triple-fault in L1"; rare, and Linux guests run on our
// VMM only in L1 here, under QEMU-TCG's emulated SVM). A file in L1 that failed with the VMM's
// `guest-triple-fault` stop runs once more, said so in the output (its first run's failure stays
// above, and the rerun alone is counted); a second triple fault fails as any failure does.
const L2_TRIPLE_FAULT = /VM stopped: guest-triple-fault/;
const rerunAfterTripleFault = [];
const HEARTBEAT = '# l1: alive';
const HEARTBEAT_LINE = /^# l1: alive\n/gm;
// Between lines only, so a beat never splits a line of a file's output.
let atLineStart = true;
if (inside) setInterval(() => { if (atLineStart) process.stdout.write(`${HEARTBEAT}\n`); }, 20_000).unref();

// In L1 the tree is the host's, read-only, and already built by the host's run.
if (process.env.VC_NESTED_L1 !== '1') {
  // Compiled tests of files since moved or deleted must not run: dist/test is rebuilt whole.
  rmSync(join(root, 'dist/test'), { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) { console.log('0 passed, 1 failed'); process.exit(1); }
}

function collect(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return collect(full);
    return name.endsWith('.test.js') ? [full] : [];
  });
}
const wanted = (f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x));
// The nested phase shares CI's 25 minutes with the L0 files and takes a core for all of its run:
// files marked `// vc-test: nested-extended` (hypervisor paths the phase's other files reach too)
// run only when a filter names them or VC_NESTED_EXTENDED=1 — `npm run test:nested-extended`.
const EXTENDED_MARK = '// vc-test: nested-extended';
const extendedWanted = (f) => process.env.VC_NESTED_EXTENDED === '1' || filters.some((x) => x !== 'nested' && relative(root, f).includes(x));
const leftOut = [];
const inArea = (area) => collect(join(root, 'dist/test', area)).filter(wanted).filter((f) => {
  if (area !== 'nested' || !hasMark(f, EXTENDED_MARK) || extendedWanted(f)) return true;
  leftOut.push(relative(join(root, 'dist'), f));
  return false;
});

// test/kvm needs a KVM that runs the test guests: here if this host has one, else in L1.
let kvmHere = inside ? kvmInside : false;
let kvmInL1 = false;
if (!inside && inArea('kvm').length > 0) {
  const { testGuestHostProblem } = await import(join(root, 'dist/test/helpers/kvm-host.js'));
  const problem = testGuestHostProblem();
  kvmHere = problem === null;
  kvmInL1 = !kvmHere;
  console.log(kvmHere
    ? '# test/kvm: this host runs the test guests, so it runs here [L0]'
    : `# test/kvm: this host cannot run the test guests (${problem}), so it runs in the nested harness's L1 [L1]`);
}

// Unit tests first: they are fast and point at the cause when an integration test fails.
const order = inside ? [...(kvmHere ? ['kvm'] : []), 'nested'] : ['unit', 'native', ...(kvmHere ? ['kvm'] : []), 'integration'];
const files = order.flatMap(inArea);
const nestedFiles = inside ? [] : [...(kvmInL1 ? inArea('kvm') : []), ...inArea('nested')];
if (!inside && leftOut.length) console.log(`# nested: not in this run (marked nested-extended; VC_NESTED_EXTENDED=1 or npm run test:nested-extended runs them): ${leftOut.join(', ')}`);

// Files that start pods run each in a network namespace of its own (`unshare --net`, lo up), so
// their pods' CNI bridge, veths, taps and routes never touch the host's namespace (in L1, L1's).
// A file that must reach the outside (to fetch packages) starts with the line
// `// vc-test: host-network` and keeps whatever network it makes in namespaces of its own.
const NETNS_AREAS = ['integration', 'kvm', 'nested'];
const HOST_NETWORK_MARK = '// vc-test: host-network';
const netnsProblem = probeNetns();
if (netnsProblem && files.some((f) => needsOwnNetns(f))) console.log(`# network namespaces: ${netnsProblem}; test files run in this namespace`);

// The unit and native files are one queue that both lanes take from (a file at a time, in name
// order, so the output still points at a cause before any integration file runs); CI's machine has
// two cores and L1's QEMU, and one lane left a core idle for minutes. A file that runs for a fixed
// time and judges nothing by speed (the concurrency soak) starts with the line
// `// vc-test: beside-unit-tests` and runs in the second lane first, beside the unit and native
// files, instead of after them. Files that judge no speed either and mostly boot pods start with
// `// vc-test: either-lane`: once the main lane has run the files that judge speed, whichever lane
// is free takes the next of them, beside the nested phase if it still runs (in name order:
// crash-lifecycle, the longest, comes first, so the lanes end near together). A file
// with a slowdown or latency check starts with `// vc-test: judges-speed`: the main lane runs these
// first among its integration files, never beside a second-lane file (the other lane's load comes
// and goes: cri-soak failed there once). The second lane's output is held and printed after the
// main lane's.
const BESIDE_MARK = '// vc-test: beside-unit-tests';
const EITHER_MARK = '// vc-test: either-lane';
const SPEED_MARK = '// vc-test: judges-speed';
const besideFiles = inside ? [] : files.filter((f) => hasMark(f, BESIDE_MARK));
const eitherFiles = inside ? [] : files.filter((f) => !besideFiles.includes(f) && hasMark(f, EITHER_MARK));
const speedFiles = inside ? [] : files.filter((f) => !besideFiles.includes(f) && !eitherFiles.includes(f) && hasMark(f, SPEED_MARK));
const areaOf = (f) => relative(join(root, 'dist/test'), f).split('/')[0];
// Within each area the files that judge speed come first (before the second lane may start).
const laneFiles = order.flatMap((area) => {
  const rest = files.filter((f) => areaOf(f) === area && !besideFiles.includes(f) && !eitherFiles.includes(f));
  return [...rest.filter((f) => speedFiles.includes(f)), ...rest.filter((f) => !speedFiles.includes(f))];
});

let passed = 0, failed = 0, skipped = 0;
const runStart = performance.now();
// The nested phase runs beside the L0 files (while it runs, the second lane takes only the soak and
// unit or native files): L1 is one QEMU process with a core or two of its own work, and CI must
// stay under 25 minutes with both. Its output is held and printed after the L0 files' (the silence watchdog still watches it
// as it arrives).
let nestedLog = '';
const emit = (text) => { nestedLog += text; };
let nestedEnded = 0;
const nestedDone = (nestedFiles.length > 0 ? nestedPhase() : Promise.resolve()).then(() => { nestedEnded = performance.now(); });
function stdoutWrite(text) {
  if (text.length > 0) atLineStart = text.endsWith('\n');
  process.stdout.write(text);
}
let besideLog = '';
const hold = (text) => { besideLog += text; };
let speedFilesRan;
const speedFilesDone = new Promise((resolve) => { speedFilesRan = resolve; });
// Files that take a minute or more whatever the machine (the fuzzers build with the sanitizers
// first) start with `// vc-test: long` and head the queue, so the two lanes end near together.
const LONG_MARK = '// vc-test: long';
const unitFiles = laneFiles.filter((f) => areaOf(f) === 'unit' || areaOf(f) === 'native');
const unitQueue = [...unitFiles.filter((f) => hasMark(f, LONG_MARK)), ...unitFiles.filter((f) => !hasMark(f, LONG_MARK))];
const takeUnitFiles = async (write) => {
  while (unitQueue.length > 0) await runAndTally(unitQueue.shift(), write);
};
const besideDone = (async () => {
  for (const file of besideFiles) await runAndTally(file, hold);
  await takeUnitFiles(hold);
})();
const secondLaneDone = (async () => {
  await besideDone;
  if (eitherFiles.length === 0) return;
  await speedFilesDone;
  while (eitherFiles.length > 0) await runAndTally(eitherFiles.shift(), hold);
})();
await takeUnitFiles(stdoutWrite);
for (const file of laneFiles.filter((f) => areaOf(f) !== 'unit' && areaOf(f) !== 'native')) {
  // The second lane's pod-booting files wait until the main lane is past its unit, native and
  // speed-judging files; no speed-judging file runs beside the concurrency soak (or the second
  // lane's share of the unit files) either.
  if (areaOf(file) === 'integration' && !speedFiles.includes(file)) speedFilesRan();
  if (speedFiles.includes(file)) await besideDone;
  await runAndTally(file, stdoutWrite);
}
speedFilesRan();
while (eitherFiles.length > 0) await runAndTally(eitherFiles.shift(), stdoutWrite);
const mainLaneEnded = performance.now();
await secondLaneDone;
const secondLaneEnded = performance.now();
if (besideLog) process.stdout.write(`\n# second lane (beside the main lane's files):${besideLog}`);
await nestedDone;
process.stdout.write(nestedLog);
if (inside) reportL1Trouble();
if (rerunAfterTripleFault.length) console.log(`\n# ${where}: run twice after a guest triple fault: ${rerunAfterTripleFault.join(', ')}`);
if (!inside) console.log(`\n# wall: main lane ended at ${seconds(mainLaneEnded - runStart)} s, second lane at ${seconds(secondLaneEnded - runStart)} s${nestedFiles.length ? `, nested phase at ${seconds(nestedEnded - runStart)} s` : ''}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && files.length + nestedFiles.length > 0 ? 0 : 1);

async function runAndTally(file, write) {
  const name = relative(join(root, 'dist'), file);
  write(`\n# [${where}] ${name}\n`);
  const began = performance.now();
  let { code, out } = await run(file, write);
  if (where === 'L1' && code !== 0 && L2_TRIPLE_FAULT.test(out)) {
    rerunAfterTripleFault.push(name);
    write(`# ${name}: a pod's guest triple-faulted in L1 (docs/nested-harness.md, "Guests that triple-fault in L1") — running the file once more, and counting that run only\n`);
    ({ code, out } = await run(file, write));
  }
  // Where the run's wall time goes (CI has 25 minutes): each file's time and when it ended.
  write(`# ${name}: ${seconds(performance.now() - began)} s, ended at ${seconds(performance.now() - runStart)} s\n`);
  if (!tallyFile(out)) { failed += 1; write(`# ${name}: no uvu summary (exit ${code}) — counted as one failure\n`); return; }
  if (code !== 0 && num(out, /Total:\s+(\d+)/) === num(out, /Passed:\s+(\d+)/)) { failed += 1; write(`# ${name}: exited ${code} after its tests\n`); }
}
function hasMark(file, mark) {
  const source = join(root, relative(join(root, 'dist'), file)).replace(/\.js$/, '.ts');
  const head = existsSync(source) ? readFileSync(source, 'utf8').slice(0, 2000) : '';
  return head.split('\n').some((line) => line.trim() === mark);
}
function seconds(ms) { return (ms / 1000).toFixed(1); }
function num(text, re) { const m = re.exec(text); return m ? Number(m[1]) : undefined; }
function probeNetns() {
  const r = spawnSync('unshare', ['--net', '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (r.error) return `unshare cannot run (${r.error.message})`;
  return r.status === 0 ? null : `unshare --net failed (${(r.stderr || '').trim() || `exit ${r.status}`})`;
}
function needsOwnNetns(file) {
  const area = relative(join(root, 'dist/test'), file).split('/')[0];
  if (!NETNS_AREAS.includes(area)) return false;
  return !hasMark(file, HOST_NETWORK_MARK);
}
function run(file, write) {
  return new Promise((resolve) => {
    const own = !netnsProblem && needsOwnNetns(file);
    const [command, args] = own
      ? ['unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, file]]
      : [process.execPath, [file]];
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    const timer = setTimeout(() => {
      write(`\n# ${relative(join(root, 'dist'), file)}: still running after ${FILE_TIMEOUT_MS / 1000} s — killed\n`);
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.stdout.on('data', (d) => { out += d; write(String(d)); });
    // A second lane's stderr joins its held output, so its lines stay with their file.
    child.stderr.on('data', (d) => { if (write === stdoutWrite) process.stderr.write(d); else write(String(d)); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

/**
 * In L1, after the files: kernel warnings (soft lockups, hung tasks, RCU stalls) and processes
 * the tests left behind, with where they sit in the kernel — what to look at when a file hung.
 */
function reportL1Trouble() {
  const dmesg = spawnSync('dmesg', [], { encoding: 'utf8' }).stdout ?? '';
  const warnings = dmesg.split('\n').filter((l) => /soft lockup|hung_task|blocked for more than|rcu.*stall|BUG:|WARNING:/.test(l));
  const left = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid).flatMap((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === 2) return [];  // kernel threads (children of kthreadd)
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      if (!/vc-vmm|qemu|dist\/test/.test(cmd)) return [];
      const stack = readFileSync(`/proc/${pid}/stack`, 'utf8').split('\n').slice(0, 6).join(' < ');
      return [`${pid} [${stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)}] ${cmd.slice(0, 120)}: ${stack}`];
    } catch { return []; }
  });
  if (warnings.length === 0 && left.length === 0) return;
  console.log('\n# L1 trouble (kernel warnings and processes left by the tests):');
  for (const line of [...warnings.slice(0, 20), ...left]) console.log(`#   ${line}`);
}

/**
 * One L1 boot for test/nested (and test/kvm where this host cannot run it); the inner closing
 * line's counts join ours. An L1 that falls silent (its kernel stopped, not a test: a hung test is
 * killed inside after FILE_TIMEOUT_MS and reported) is given up after L1_SILENCE_MS, and an L1
 * whose own kernel panicked (QEMU exits: panic=-1 with -no-reboot) is over at once; either way the
 * files it had not finished run once more in a fresh L1 — said so in the output, with L1's
 * console. Both seen only under load on hosts without /dev/kvm (docs/nested-harness.md); a second
 * stop is a failure.
 */
async function nestedPhase() {
  emit(`\n# nested: ${nestedFiles.length} file(s) in one L1 VM (nested-KVM harness)${kvmInL1 ? ', test/kvm among them' : ''}\n`);
  const names = nestedFiles.map((f) => relative(join(root, 'dist'), f));
  const first = await nestedOnce(filters);
  if (!first.silent && !first.crashed) return tally(first);
  const done = finishedFiles(first.output);
  for (const block of done) tallyFile(block.out);
  const rest = names.filter((n) => !done.some((b) => b.name === n));
  const what = first.silent ? `fell silent for ${L1_SILENCE_MS / 1000} s` : 'stopped: its kernel panicked';
  emit(`# nested: L1 ${what} (its console is above); ${done.length} file(s) had finished; running the other ${rest.length} in a fresh L1\n`);
  if (rest.length === 0) return;
  const second = await nestedOnce(rest);
  if (second.silent) emit('# nested: L1 fell silent again\n');
  if (second.crashed) emit('# nested: L1\'s kernel panicked again\n');
  if (!second.silent && !second.crashed) return tally(second);
  for (const block of finishedFiles(second.output)) tallyFile(block.out);
  failed += 1;
  emit('# nested: the second L1 stopped too — its unfinished files counted as one failure\n');
}


/** Runs scripts/test.js nested-inside in one L1; `silent` when the silence watchdog ended it. */
async function nestedOnce(fileFilters) {
  const { runInL1, l1KernelPanic } = await import(join(root, 'dist/test/harness/l1.js'));
  // Normally 8-10 min beside the L0 files (more with test/kvm); the bound keeps a hung L1 from taking CI past 25 minutes.
  const timeoutMs = Number(process.env.VC_NESTED_TIMEOUT_MS) || (kvmInL1 ? 21 : 18) * 60 * 1000;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let silent = false, output = '';
  let watchdog;
  const feed = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => { silent = true; abort.abort(); }, L1_SILENCE_MS);
  };
  feed();
  try {
    const r = await runInL1({
      command: [process.execPath, join(root, 'scripts/test.js'), 'nested-inside', ...(kvmInL1 ? ['--with-kvm'] : []), ...fileFilters],
      cwd: root,
      env: { NO_COLOR: '1', ...(process.env.CI ? { CI: process.env.CI } : {}), ...(process.env.VC_NESTED_EXTENDED ? { VC_NESTED_EXTENDED: process.env.VC_NESTED_EXTENDED } : {}) },
      timeoutMs,
      signal: abort.signal,
      onOutput: (chunk) => {
        feed();
        const text = chunk.replace(HEARTBEAT_LINE, '');
        output += text;
        emit(text);
      },
      onProgress: (m) => { feed(); emit(`# nested: ${m}\n`); },
    });
    emit(`# nested: L1 booted in ${r.bootMs} ms; the phase took ${r.totalMs} ms; inner exit ${r.exitCode}\n`);
    return { silent: false, output: r.output, exitCode: r.exitCode };
  } catch (err) {
    // The guest kernel's own panic (not a test's failure): QEMU exits before the command does.
    const crashed = !silent && l1KernelPanic(err) !== null;
    if (silent || crashed) emit(`--- L1 console ---\n${err.console ?? ''}\n`);
    return { silent, crashed, output, error: err };
  } finally {
    clearTimeout(watchdog);
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}

/** Adds a finished L1 run's closing line to ours (or one failure when there is none). */
function tally(run) {
  if (run.error && !run.silent && !run.crashed) {
    failed += 1;
    emit(`# nested: the harness failed — counted as one failure\n${run.error.message}\n`);
    return;
  }
  const last = [...run.output.matchAll(/^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/gm)].pop();
  if (!last) {
    failed += 1;
    emit('# nested: no closing "N passed, N failed" line from L1 — counted as one failure\n');
    return;
  }
  passed += Number(last[1]); failed += Number(last[2]); skipped += Number(last[3] ?? 0);
  if (run.exitCode !== 0 && Number(last[2]) === 0) { failed += 1; emit(`# nested: the inner run exited ${run.exitCode} with no failure counted\n`); }
}

/** The files of an L1 run cut short whose uvu summary arrived: { name, out } each. */
function finishedFiles(output) {
  const parts = output.split(/^# \[L1\] (\S+)$/m);
  const blocks = [];
  for (let i = 1; i + 1 < parts.length; i += 2) {
    if (/Total:\s+\d+/.test(parts[i + 1])) blocks.push({ name: parts[i], out: parts[i + 1] });
  }
  return blocks;
}

/** Adds one file's uvu summary (and its own SKIP lines) to the counts; false when it has none. */
function tallyFile(out) {
  const total = num(out, /Total:\s+(\d+)/), ok = num(out, /Passed:\s+(\d+)/) ?? 0, skip = num(out, /Skipped:\s+(\d+)/) ?? 0;
  if (total === undefined) return false;
  passed += ok; skipped += skip + (out.match(/^SKIP /gm) ?? []).length; failed += total - ok - skip;
  return true;
}
