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
import { readdirSync, rmSync, statSync, existsSync } from 'node:fs';
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
const FILE_TIMEOUT_MS = Number(process.env.VC_TEST_FILE_TIMEOUT_MS) || 8 * 60 * 1000;

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
const inArea = (area) => collect(join(root, 'dist/test', area)).filter(wanted);

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

let passed = 0, failed = 0, skipped = 0;
for (const file of files) {
  const name = relative(join(root, 'dist'), file);
  console.log(`\n# [${where}] ${name}`);
  const { code, out } = await run(file);
  const total = num(out, /Total:\s+(\d+)/), ok = num(out, /Passed:\s+(\d+)/), skip = num(out, /Skipped:\s+(\d+)/);
  const fileSkips = (out.match(/^SKIP /gm) ?? []).length;
  if (total === undefined) { failed += 1; console.log(`# ${name}: no uvu summary (exit ${code}) — counted as one failure`); continue; }
  passed += ok ?? 0; skipped += (skip ?? 0) + fileSkips;
  failed += total - (ok ?? 0) - (skip ?? 0);
  if (code !== 0 && total === ok) { failed += 1; console.log(`# ${name}: exited ${code} after its tests`); }
}
if (nestedFiles.length > 0) await nestedPhase();
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && files.length + nestedFiles.length > 0 ? 0 : 1);

function num(text, re) { const m = re.exec(text); return m ? Number(m[1]) : undefined; }
function run(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    const timer = setTimeout(() => {
      console.log(`\n# ${relative(join(root, 'dist'), file)}: still running after ${FILE_TIMEOUT_MS / 1000} s — killed`);
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { process.stderr.write(d); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

/** One L1 boot for all of test/nested; its closing line's counts join ours. */
async function nestedPhase() {
  console.log(`\n# nested: ${nestedFiles.length} file(s) in one L1 VM (nested-KVM harness)${kvmInL1 ? ', test/kvm among them' : ''}`);
  const { runInL1 } = await import(join(root, 'dist/test/harness/l1.js'));
  // Normally 3-5 min (more with test/kvm); the bound keeps a hung L1 from taking CI past 25 minutes.
  const timeoutMs = Number(process.env.VC_NESTED_TIMEOUT_MS) || (kvmInL1 ? 15 : 12) * 60 * 1000;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let output = '';
  try {
    const r = await runInL1({
      command: [process.execPath, join(root, 'scripts/test.js'), 'nested-inside', ...(kvmInL1 ? ['--with-kvm'] : []), ...filters],
      cwd: root,
      env: { NO_COLOR: '1', ...(process.env.CI ? { CI: process.env.CI } : {}) },
      timeoutMs,
      signal: abort.signal,
      onOutput: (chunk) => process.stdout.write(chunk),
      onProgress: (m) => console.log(`# nested: ${m}`),
    });
    output = r.output;
    console.log(`# nested: L1 booted in ${r.bootMs} ms; the phase took ${r.totalMs} ms; inner exit ${r.exitCode}`);
    const last = [...output.matchAll(/^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/gm)].pop();
    if (!last) {
      failed += 1;
      console.log('# nested: no closing "N passed, N failed" line from L1 — counted as one failure');
      return;
    }
    passed += Number(last[1]); failed += Number(last[2]); skipped += Number(last[3] ?? 0);
    if (r.exitCode !== 0 && Number(last[2]) === 0) { failed += 1; console.log(`# nested: the inner run exited ${r.exitCode} with no failure counted`); }
  } catch (err) {
    failed += 1;
    console.log(`# nested: the harness failed — counted as one failure\n${err.message}`);
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}
