// VMM start: the same test guest (native/testguest's PVH ELF, vctest=hello: one port-0x80 write as
// its first user-mode instruction, "ready" on COM1, then the i8042 reset) started by
//   - the built-in VMM in this process (the addon's Vm): firstExitUs from its status, counted by
//     the VMM from the start of VM construction;
//   - the built-in VMM as a process (`vc-vmm run --config FILE`): from just before spawn() to the
//     first guest exit, whose wall-clock time vc-vmm prints on stderr;
//   - QEMU (microvm, -accel kvm when it runs the guest here, else TCG): from just before spawn() to
//     the first byte of the isa-debugcon on port 0x80 arriving on a pipe;
// and to "ready" on the serial console as this process sees it. Runs are interleaved so that
// host noise spreads over every variant. The floor (bench-kvm-floor) is what KVM alone charges.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../src/native.js';
import { paths, qemuArgs, runTimed, vmmConfig, type QemuAccel } from './lib/guests.js';
import type { HostPlan } from './lib/plan.js';
import { parseVmmParts, parseVmmTiming, sleep, track, untrack, wallNowMs } from './lib/proc.js';
import { runThroughLauncher } from '../src/hypervisor/kvm/launcher.js';
import type { StartVariant, VmmStartSection } from './lib/results.js';
import { round, summarize, type Summary } from './lib/stats.js';

export interface SectionOptions {
  /** Counts and time limits, by mode and by where the section runs (bench/lib/plan.ts). */
  plan: HostPlan;
  onProgress: (msg: string) => void;
}

const GUEST_MIB = 128;
const CMDLINE = 'vctest=hello';

interface Sample {
  firstMs: number | null;
  readyMs: number | null;
  /** Named parts of the time (ms), e.g. spawn → vc-vmm's main. */
  parts?: Record<string, number>;
  failure?: string;
}

/** Decides QEMU's accelerator for the comparison: KVM if QEMU runs the test guest on it here. */
export async function probeQemuAccel(timeoutScale = 1): Promise<{ accel: QemuAccel | null; note: string }> {
  const version = spawnSync(paths.qemu, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) return { accel: null, note: `${paths.qemu} not found or not runnable` };
  const args = qemuArgs({ accel: 'kvm', kernel: paths.guestElf, cmdline: CMDLINE, memoryMiB: GUEST_MIB });
  const timeoutMs = 20000 * timeoutScale;
  const r = await runTimed(paths.qemu, args, { marker: 'vctest done', timeoutMs });
  if (r.markerAtMs !== null && r.code === 0)
    return { accel: 'kvm', note: 'QEMU ran the test guest with -accel kvm here (CPU model host,-arch-capabilities: PVM refuses MSR 0x10a)' };
  const why = r.timedOut ? `no "vctest done" within ${timeoutMs / 1000} s` : `exit ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-2).join(' / ')}`;
  return { accel: 'tcg', note: `QEMU -accel kvm could not run the test guest here (${why}); the ratio uses QEMU TCG` };
}

async function builtinInprocess(dir: string, i: number, timeoutScale: number): Promise<Sample> {
  const Vm = native().Vm;
  const serial = join(dir, `inproc-${i}.serial`);
  writeFileSync(serial, '');
  let readyAt: number | null = null;
  let t0 = 0;
  // inotify on the serial file: no polling loop competing with the vCPU for the 2 cores.
  const watcher = watch(serial, () => {
    if (readyAt === null && readFileSync(serial, 'utf8').includes('ready')) readyAt = performance.now();
  });
  try {
    const config = JSON.stringify(vmmConfig({ kernel: paths.guestElf, cmdline: CMDLINE, memoryMiB: GUEST_MIB, serialOutput: serial }));
    t0 = performance.now();
    const vm = new Vm(config);
    vm.start();
    // A timer cleared afterwards: a pending one would keep the process alive (100 s in L1) after the run.
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([vm.wait(), new Promise<null>((r) => { timer = setTimeout(() => r(null), 10000 * timeoutScale); })]);
    clearTimeout(timer);
    if (!stopped) {
      vm.stop();
      await vm.wait();
      return { firstMs: null, readyMs: null, failure: `in-process VM did not stop within ${10 * timeoutScale} s` };
    }
    const status = JSON.parse(vm.status()) as { firstExitUs?: number; startPartsUs?: Record<string, number> };
    // The last inotify event may still be queued: give it a moment.
    for (let k = 0; k < 50 && readyAt === null; k++) await sleep(2);
    if (stopped.reason !== 'guest-reset') return { firstMs: null, readyMs: null, failure: `stopped: ${stopped.reason} ${stopped.detail}` };
    return {
      firstMs: status.firstExitUs !== undefined ? status.firstExitUs / 1000 : null,
      readyMs: readyAt !== null ? readyAt - t0 : null,
      parts: status.startPartsUs ? usToMs(status.startPartsUs) : undefined,
    };
  } finally {
    watcher.close();
  }
}

async function builtinProcess(dir: string, timeoutScale: number): Promise<Sample> {
  // The config in a file, as startPod passes it (vmm.json): on stdin, vc-vmm's main waited
  // 0.2-0.7 ms for this process to get round to writing it after spawn().
  const configPath = join(dir, 'vmm.json');
  writeFileSync(configPath, JSON.stringify(vmmConfig({ kernel: paths.guestElf, cmdline: CMDLINE, memoryMiB: GUEST_MIB, serialOutput: '-' })));
  const r = await runTimed(paths.vcVmm, ['run', '--config', configPath], { marker: 'ready', timeoutMs: 10000 * timeoutScale });
  const timing = parseVmmTiming(r.stderr);
  if (r.code !== 0 || !timing || timing.firstExitUnixMs === null)
    return { firstMs: null, readyMs: null, failure: `vc-vmm exit ${r.code ?? r.signal}${r.timedOut ? ' (timeout)' : ''}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}` };
  const firstMs = timing.firstExitUnixMs - r.spawnedAtMs;
  return {
    firstMs,
    readyMs: r.markerAtMs !== null ? r.markerAtMs - r.spawnedAtMs : null,
    parts: {
      spawnToVmmMainMs: firstMs - timing.firstExitUs / 1000,
      vmmMainToVmBuiltMs: timing.builtUs / 1000,
      vmmMainToFirstExitMs: timing.firstExitUs / 1000,
      ...usToMs(parseVmmParts(r.stderr) ?? {}),
    },
  };
}

/**
 * The built-in VMM through its pre-forked launcher (`vc-vmm launcher`, which the library uses when
 * VC_VMM_LAUNCHER names it): from just before connecting to the launcher's socket to the
 * wall-clock first-exit time the VMM prints; the process spawn was paid ahead by the launcher.
 */
async function builtinLauncher(dir: string, socketPath: string, timeoutScale: number): Promise<Sample> {
  const configPath = join(dir, 'vmm.json');
  writeFileSync(configPath, JSON.stringify(vmmConfig({ kernel: paths.guestElf, cmdline: CMDLINE, memoryMiB: GUEST_MIB, serialOutput: '-' })));
  let readyAtMs: number | null = null;
  let seen = '';
  const startedAtMs = wallNowMs();
  const run = await runThroughLauncher(socketPath, ['run', '--config', configPath], {
    timeoutMs: 10000 * timeoutScale,
    onOutput: (chunk) => {
      seen += chunk;
      if (readyAtMs === null && seen.includes('ready')) readyAtMs = wallNowMs();
    },
  }).catch((err: Error) => ({ code: -1, output: err.message }));
  if (!run) return { firstMs: null, readyMs: null, failure: `no launcher listens on ${socketPath}` };
  const timing = parseVmmTiming(run.output);
  if (run.code !== 0 || !timing || timing.firstExitUnixMs === null)
    return { firstMs: null, readyMs: null, failure: `vc-vmm through the launcher, exit ${run.code}: ${run.output.trim().split('\n').slice(-1)[0] ?? ''}` };
  const firstMs = timing.firstExitUnixMs - startedAtMs;
  return {
    firstMs,
    readyMs: readyAtMs !== null ? readyAtMs - startedAtMs : null,
    parts: { requestToVmmMainMs: firstMs - timing.firstExitUs / 1000, vmmMainToFirstExitMs: timing.firstExitUs / 1000 },
  };
}

/** A `vc-vmm launcher` for the section's runs (2 spares), stopped with it; null with why when it did not come up. */
async function startLauncher(dir: string): Promise<{ socketPath: string; stop: () => void } | { note: string }> {
  const socketPath = join(dir, 'launcher.sock');
  const child = spawn(paths.vcVmm, ['launcher', '--socket', socketPath, '--spares', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child.pid);
  let said = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (said += d));
  const deadline = Date.now() + 10000;
  while (!said.includes('serving') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const stop = () => {
    child.kill('SIGTERM');
    untrack(child.pid);
  };
  if (!said.includes('serving')) {
    stop();
    return { note: `vc-vmm launcher did not come up: ${said.trim() || `exit ${child.exitCode}`}` };
  }
  return { socketPath, stop };
}

/** The VMM's per-step µs (Vm::StartPartsJson) as ms, for the parts table. */
function usToMs(parts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(parts).map(([k, us]) => [k, us / 1000]));
}

async function qemu(dir: string, accel: QemuAccel, timeoutScale: number): Promise<Sample> {
  const socketPath = join(dir, 'debugcon.sock');
  const args = qemuArgs({ accel, kernel: paths.guestElf, cmdline: CMDLINE, memoryMiB: GUEST_MIB, debugconSocket: socketPath });
  const r = await runTimed(paths.qemu, args, { socketPath, marker: 'ready', timeoutMs: 30000 * timeoutScale });
  if (r.socketAtMs === null || r.markerAtMs === null)
    return { firstMs: null, readyMs: null, failure: `qemu exit ${r.code ?? r.signal}${r.timedOut ? ' (timeout)' : ''}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}` };
  return { firstMs: r.socketAtMs - r.spawnedAtMs, readyMs: r.markerAtMs - r.spawnedAtMs };
}

/** One bench-kvm-floor run: every iteration's total (ms) and its JSON without them; or why not. */
function kvmFloorRun(iterations: number, timeoutScale: number): { samplesMs: number[]; detail: Record<string, unknown> } | { note: string } {
  if (!existsSync(paths.kvmFloor)) return { note: `${paths.kvmFloor} is missing: run npm run build:native` };
  // --hold-vm: no VMM pays the static-key text patching a lone irqchip-less vCPU causes (kvm_floor.cc), and in L1 it took minutes.
  const r = spawnSync(paths.kvmFloor, ['--iterations', String(iterations), '--memory-mib', String(GUEST_MIB), '--hold-vm'], { encoding: 'utf8', timeout: 60000 * timeoutScale });
  if (r.status !== 0) return { note: `bench-kvm-floor failed: ${(r.stderr || r.stdout || r.error?.message || '').trim()}` };
  const { totalSamplesUs, ...detail } = JSON.parse(r.stdout) as { totalSamplesUs: number[] } & Record<string, unknown>;
  return { samplesMs: totalSamplesUs.map((us) => us / 1000), detail };
}

/** The chunks the floor's iterations are split into, run between start rounds (see vmmStartBenchmarks). */
const FLOOR_CHUNKS = 5;

export async function vmmStartBenchmarks(opts: SectionOptions): Promise<VmmStartSection> {
  const { plan } = opts;
  const runs = plan.startRuns, scale = plan.timeoutScale;
  const notes: string[] = [];
  for (const p of [paths.vcVmm, paths.guestElf])
    if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build:native`);

  opts.onProgress('vmm start: probing QEMU -accel kvm with the test guest');
  const { accel, note } = await probeQemuAccel(scale);
  opts.onProgress(`vmm start: ${note}`);

  // The floor is measured in FLOOR_CHUNKS runs spread over the start rounds, like the variants'
  // interleaving: one burst would take whatever load the host (or L1's emulation) had at that moment.
  const floorSamples: number[] = [];
  const floorChunks: Record<string, unknown>[] = [];
  let floorNote: string | null = null;
  const floorChunk = () => {
    if (floorNote) return;
    const r = kvmFloorRun(Math.ceil(plan.floorIterations / FLOOR_CHUNKS), scale);
    if ('note' in r) floorNote = r.note;
    else {
      floorSamples.push(...r.samplesMs);
      floorChunks.push(r.detail);
    }
  };

  type Variant = { name: string; run: (i: number) => Promise<Sample> };
  const dir = mkdtempSync('/tmp/vc-bench-start-');
  const launcher = await startLauncher(dir);
  if ('note' in launcher) notes.push(launcher.note);
  const variants: Variant[] = [
    { name: 'built-in, in-process', run: (i) => builtinInprocess(dir, i, scale) },
    { name: 'built-in, process', run: () => builtinProcess(dir, scale) },
  ];
  if ('socketPath' in launcher) variants.push({ name: 'built-in, launcher', run: () => builtinLauncher(dir, launcher.socketPath, scale) });
  if (accel) variants.push({ name: `QEMU (${accel})`, run: () => qemu(dir, accel, scale) });
  // TCG too when KVM was the headline: what QEMU costs where it cannot use /dev/kvm.
  if (accel === 'kvm') variants.push({ name: 'QEMU (tcg)', run: () => qemu(dir, 'tcg', scale) });

  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  try {
    // One untimed round: page cache, the addon loaded, QEMU's libraries mapped once.
    for (const v of variants) {
      opts.onProgress(`vmm start: untimed round: ${v.name}`);
      await v.run(-1);
    }
    for (let i = 0; i < runs; i++) {
      if (i % Math.max(1, Math.floor(runs / FLOOR_CHUNKS)) === 0 && floorChunks.length < FLOOR_CHUNKS) floorChunk();
      // In L1 a round takes seconds: report each, so a stuck one shows where it stuck.
      if (i % 5 === 0 || plan.where === 'l1') opts.onProgress(`vmm start: round ${i + 1}/${runs}`);
      // Rotate the order each round: no variant always runs right after another.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(i + k) % variants.length]!;
        samples.get(v.name)!.push(await v.run(i));
      }
    }
    while (floorChunks.length < FLOOR_CHUNKS && !floorNote) floorChunk();
  } finally {
    if ('stop' in launcher) launcher.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (floorNote) notes.push(floorNote);
  const floorMs = floorSamples.length ? summarize(floorSamples) : null;
  opts.onProgress(`vmm start: KVM floor ${floorMs ? `median ${floorMs.median} ms of ${floorMs.n} iterations in ${floorChunks.length} runs` : 'not measured'}`);

  const out: Record<string, StartVariant> = {};
  for (const v of variants) {
    const s = samples.get(v.name)!;
    out[v.name] = {
      firstInstructionMs: summarize(s.flatMap((x) => (x.firstMs !== null ? [x.firstMs] : []))),
      readyMs: summarize(s.flatMap((x) => (x.readyMs !== null ? [x.readyMs] : []))),
      failures: s.flatMap((x) => (x.failure ? [x.failure] : [])),
    };
    const partNames = [...new Set(s.flatMap((x) => Object.keys(x.parts ?? {})))];
    if (partNames.length)
      out[v.name]!.parts = Object.fromEntries(partNames.map((p) => [p, summarize(s.flatMap((x) => (x.parts?.[p] !== undefined ? [x.parts[p]!] : [])))]));
  }
  for (const [name, v] of Object.entries(out))
    if (v.parts) opts.onProgress(`vmm start: ${name}, parts (median ms): ${Object.entries(v.parts).map(([k, p]) => `${k} ${p.median}`).join(', ')}`);
  const inproc = out['built-in, in-process']!, proc = out['built-in, process']!, viaLauncher = out['built-in, launcher'];
  const q = accel ? out[`QEMU (${accel})`]! : null;
  const ratio = (a: Summary | undefined, b: Summary | undefined) =>
    a && b && a.n && b.n && b.median > 0 ? round(a.median / b.median, 2) : null;

  notes.push(
    'first guest instruction: built-in = the first KVM exit to the VMM (the guest\'s port-0x80 write, its first instruction that leaves KVM); ' +
      'in-process counts from the start of VM construction (status().firstExitUs), process from just before spawn() to the wall-clock first-exit time vc-vmm prints, launcher from just before connecting to a `vc-vmm launcher` (2 pre-forked spares, started with the section) to that time; ' +
      'QEMU from just before spawn() to the debugcon byte arriving on our Unix socket (includes one socket wakeup of this process, ~0.1 ms).',
    '"ready": the guest\'s line on COM1 as this process saw it (stdout pipe; in-process through the serial file and inotify).',
    `every VM: ${GUEST_MIB} MiB, 1 vCPU, the same PVH ELF (${paths.guestElf.replace(/.*\/build\//, 'build/')}).`,
  );
  return {
    where: plan.where,
    runs,
    guest: { image: 'build/Release/testguest/vctest.elf', cmdline: CMDLINE, memoryMiB: GUEST_MIB, vcpus: 1 },
    qemuAccel: accel,
    qemuAccelNote: note,
    qemuCommand: accel ? [paths.qemu, ...qemuArgs({ accel, kernel: 'build/Release/testguest/vctest.elf', cmdline: CMDLINE, memoryMiB: GUEST_MIB, debugconSocket: '/tmp/…/debugcon.sock' })] : [],
    builtinInprocessMs: inproc.firstInstructionMs.n ? inproc.firstInstructionMs : null,
    builtinProcessMs: proc.firstInstructionMs.n ? proc.firstInstructionMs : null,
    builtinLauncherMs: viaLauncher?.firstInstructionMs.n ? viaLauncher.firstInstructionMs : null,
    speedupVsQemuLauncher: ratio(q?.firstInstructionMs, viaLauncher?.firstInstructionMs),
    qemuMs: q && q.firstInstructionMs.n ? q.firstInstructionMs : null,
    speedupVsQemu: ratio(q?.firstInstructionMs, proc.firstInstructionMs),
    speedupVsQemuReady: ratio(q?.readyMs, proc.readyMs),
    variants: out,
    kvmFloorMs: floorMs,
    kvmFloorDetail: floorChunks.length ? { runs: floorChunks } : null,
    notes,
  };
}
