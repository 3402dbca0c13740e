#!/usr/bin/env node
// Runs every compiled test file in its own process and prints one closing line, since uvu prints
// per-file totals only. Usage: node scripts/test.js [unit|native|integration|FILTER...]
import { spawnSync, spawn } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) { console.log('0 passed, 1 failed'); process.exit(1); }

function collect(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return collect(full);
    return name.endsWith('.test.js') ? [full] : [];
  });
}
// Unit tests first: they are fast and point at the cause when an integration test fails.
const order = ['unit', 'native', 'integration'];
const files = order.flatMap((area) => collect(join(root, 'dist/test', area)))
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)));

let passed = 0, failed = 0, skipped = 0;
for (const file of files) {
  const name = relative(join(root, 'dist'), file);
  console.log(`\n# ${name}`);
  const { code, out } = await run(file);
  const total = num(out, /Total:\s+(\d+)/), ok = num(out, /Passed:\s+(\d+)/), skip = num(out, /Skipped:\s+(\d+)/);
  const fileSkips = (out.match(/^SKIP /gm) ?? []).length;
  if (total === undefined) { failed += 1; console.log(`# ${name}: no uvu summary (exit ${code}) — counted as one failure`); continue; }
  passed += ok ?? 0; skipped += (skip ?? 0) + fileSkips;
  failed += total - (ok ?? 0) - (skip ?? 0);
  if (code !== 0 && total === ok) { failed += 1; console.log(`# ${name}: exited ${code} after its tests`); }
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);

function num(text, re) { const m = re.exec(text); return m ? Number(m[1]) : undefined; }
function run(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { process.stderr.write(d); });
    child.on('close', (code) => resolve({ code, out }));
  });
}
