#!/usr/bin/env node
// Many pods restored from one template, left running, one after another (docs/snapshots.md "What is
// next", item 3): the repro for restored guests that triple-fault or hang inside the nested L1.
// Run inside L1 (the host's PVM /dev/kvm cannot boot the guests), with dist/ built:
//   node dist/test/harness/cli.js --cpus 2 --memory 6144 -- node scripts/template-restore-stress.mjs
// Env: PODS (16), MIB (256), ROOT (a fresh /tmp dir: L1's /tmp is an overlay on tmpfs), OUT (where
// the report goes; default $VC_L1_SCRATCH/stress-<time>, so it survives L1), EXEC=1 (an exec in each
// new pod after its start), NET=bridge (the default network instead of none), LOAD=1 (each guest writes
// fresh pages after its start and goes on writing), COLD=N (N cold pods booted, then stopped, before the template, as the
// templates bench does).
// After the template is made, its memory file is copied aside; after every restore it is compared with
// that copy page by page (a restored pod must never write the file), and every running pod's VMM is
// checked to be alive. L1's /proc/vmstat and transparent-hugepage settings are saved before and after.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('..', import.meta.url));
const lib = await import(join(here, 'dist/src/index.js'));
const PODS = Number(process.env.PODS ?? 16);
const MIB = Number(process.env.MIB ?? 256);
// NET=bridge: the pods' default network (the templates bench's); none by default.
const LOAD = process.env.LOAD === '1';
const NET = process.env.NET === 'bridge' ? {} : { network: 'none' };
const root = process.env.ROOT ?? mkdtempSync('/tmp/vcstress-');
mkdirSync(root, { recursive: true });
const out = process.env.OUT ?? join(process.env.VC_L1_SCRATCH ?? '/tmp', `stress-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(out, { recursive: true });
const t0 = Date.now();
const log = (m) => { const line = `[${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`; console.log(line); appendFileSync(join(out, 'log.txt'), line + '\n'); };
const opts = () => ({ root, signal: AbortSignal.timeout(180_000) });

function saveMm(tag) {
  writeFileSync(join(out, `vmstat-${tag}.txt`), readFileSync('/proc/vmstat', 'utf8'));
  const thp = '/sys/kernel/mm/transparent_hugepage';
  const lines = [];
  const walk = (d) => { for (const n of readdirSync(d, { withFileTypes: true })) { const p = join(d, n.name); if (n.isDirectory()) walk(p); else { try { lines.push(`${p}: ${readFileSync(p, 'utf8').trim()}`); } catch (e) { lines.push(`${p}: ${e.code}`); } } } };
  if (existsSync(thp)) walk(thp);
  for (const f of ['/sys/kernel/mm/ksm/run', '/proc/sys/vm/compact_unevictable_allowed', '/proc/sys/vm/extfrag_threshold', '/proc/sys/kernel/numa_balancing', '/proc/meminfo']) {
    try { lines.push(`${f}: ${readFileSync(f, 'utf8').trim()}`); } catch (e) { lines.push(`${f}: ${e.code}`); }
  }
  writeFileSync(join(out, `mm-${tag}.txt`), lines.join('\n') + '\n');
}

/** Pages (4 KiB, from the file's start) where `a` and `b` differ; stops after `max`. */
function diffPages(a, b, max = 64) {
  const CH = 1 << 20;
  const fa = openSync(a, 'r'), fb = openSync(b, 'r');
  const ba = Buffer.alloc(CH), bb = Buffer.alloc(CH);
  const pages = [];
  try {
    for (let off = 0; ; off += CH) {
      const na = readSync(fa, ba, 0, CH, off), nb = readSync(fb, bb, 0, CH, off);
      if (na !== nb) { pages.push(`size differs at ${off + Math.min(na, nb)}`); break; }
      if (na === 0) break;
      if (ba.compare(bb, 0, nb, 0, na) === 0) continue;
      for (let p = 0; p < na; p += 4096) {
        if (ba.compare(bb, p, p + 4096, p, p + 4096) !== 0) {
          let first = p; while (ba[first] === bb[first]) first++;
          pages.push(`page ${(off + p) / 4096} (guest pa 0x${(off + p - 4096).toString(16)}), first differing byte +${first - p}`);
          if (pages.length >= max) return pages;
        }
      }
    }
  } finally { closeSync(fa); closeSync(fb); }
  return pages;
}

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const tail = (f, n = 30) => { try { return readFileSync(f, 'utf8').split('\n').slice(-n).join('\n'); } catch (e) { return `(${e.code})`; } };

const running = []; // { id, pid }
let failed = null;
saveMm('before');
log(`root ${root}, out ${out}, ${PODS} pods of ${MIB} MiB`);
try {
  // As bench/templates.ts does: cold pods booted (all running), then stopped, before the template.
  const cold = Number(process.env.COLD ?? 0);
  for (let i = 1; i <= cold; i++) {
    await lib.createPod({ id: `cold${i}`, hypervisor: 'kvm', vcpus: 1, memoryMiB: MIB, ...NET }, opts());
    await lib.startPod(`cold${i}`, { ...opts(), bootTimeoutMs: 120_000 });
    log(`cold${i} started`);
  }
  for (let i = 1; i <= cold; i++) {
    await lib.stopPod(`cold${i}`, { root, timeoutMs: 5000 }).catch(() => {});
    await lib.deletePod(`cold${i}`, { root }).catch(() => {});
  }
  let t = Date.now();
  await lib.createTemplate({ name: 'base', hypervisor: 'kvm', vcpus: 1, memoryMiB: MIB, ...NET }, opts());
  const mem = join(root, 'templates', 'base', 'memory');
  const copy = join('/dev/shm', 'memory.copy');
  copyFileSync(mem, copy);
  log(`template made in ${Date.now() - t} ms; memory file copied aside to ${copy}`);
  saveMm('template');
  for (let i = 1; i <= PODS && !failed; i++) {
    const id = `warm${i}`;
    await lib.createPod({ id, template: 'base', ...NET }, opts());
    t = Date.now();
    try {
      await lib.startPod(id, { ...opts(), bootTimeoutMs: 120_000 });
    } catch (err) {
      failed = `${id} start: ${err.message}`;
      log(`FAIL ${failed}`);
      writeFileSync(join(out, `${id}.vmm.log`), tail(join(root, 'pods', id, 'vmm.log'), 200));
      break;
    }
    const pid = (await lib.podStatus(id, { root })).pid;
    running.push({ id, pid });
    let line = `${id} started in ${Date.now() - t} ms (pid ${pid})`;
    if (process.env.EXEC === '1' || LOAD) {
      // LOAD=1: the guest writes 32 MiB of fresh pages now (each a copy-on-write of the template's
      // page in the VMM) and leaves a loop behind that writes 4 MiB a second, so earlier pods keep
      // breaking CoW while later ones are restored.
      const script = LOAD
        ? 'for d in /dev/shm /run /tmp; do [ -w $d ] && break; done; dd if=/dev/zero of=$d/f bs=1M count=32 2>&1 | tail -1; rm -f $d/f; ' +
          '(while :; do dd if=/dev/zero of=$d/g bs=1M count=4 2>/dev/null; rm -f $d/g; sleep 1; done) </dev/null >/dev/null 2>&1 & echo ok $d'
        : 'echo ok; cat /proc/loadavg';
      const p = await lib.enterPod(id, ['sh', '-c', script], opts());
      let s = ''; p.stdout.on('data', (c) => { s += c; });
      const st = await p.wait();
      line += `; exec ${st.exitCode}: ${s.trim().replace(/\n/g, ' | ')}`;
    }
    log(line);
    const changed = diffPages(mem, copy, 16);
    if (changed.length) { failed = `the template's memory file changed after ${id}: ${changed.join('; ')}`; log(`FAIL ${failed}`); }
    const dead = running.filter((r) => !alive(r.pid));
    for (const r of dead) {
      failed ??= `${r.id}'s VMM (pid ${r.pid}) is gone`;
      log(`FAIL ${r.id} (pid ${r.pid}) died; vmm.log:\n${tail(join(root, 'pods', r.id, 'vmm.log'))}\nconsole:\n${tail(join(root, 'pods', r.id, 'console.log'), 15)}`);
    }
  }
  if (!failed) {
    await new Promise((r) => setTimeout(r, 5000));
    const dead = running.filter((r) => !alive(r.pid));
    for (const r of dead) { failed ??= `${r.id} died after all started`; log(`FAIL ${r.id} (pid ${r.pid}) died; vmm.log:\n${tail(join(root, 'pods', r.id, 'vmm.log'))}`); }
    const changed = diffPages(mem, copy, 16);
    if (changed.length) { failed ??= 'memory file changed'; log(`FAIL the template's memory file changed: ${changed.join('; ')}`); }
  }
  log(failed ? `RESULT failed after ${running.length} running: ${failed}` : `RESULT ok: ${running.length} restored pods running`);
} catch (err) {
  log(`RESULT error: ${err.stack}`);
  failed = String(err);
} finally {
  saveMm('after');
  const d = spawnSync('dmesg', { encoding: 'utf8' });
  writeFileSync(join(out, 'dmesg.txt'), d.stdout + d.stderr);
  for (const r of running) {
    writeFileSync(join(out, `${r.id}.vmm.log`), tail(join(root, 'pods', r.id, 'vmm.log'), 200));
    await lib.stopPod(r.id, { root, timeoutMs: 5000 }).catch(() => {});
    await lib.deletePod(r.id, { root }).catch(() => {});
  }
  await lib.deleteTemplate('base', { root }).catch(() => {});
  log('cleaned up');
}
process.exit(failed ? 1 : 0);
