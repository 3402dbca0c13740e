// Memory and density with the idle test guest (native/testguest vctest=idle: the first port-0x80
// write, "ready" on COM1, then `hlt` at CPL0 with interrupts off, so an idle VM costs no host CPU
// and holds its memory until the VMM is stopped).
//
//   memory:  N idle VMs per hypervisor (built-in 1/10/100; QEMU 1/10, and 100 with --full: the
//            counts are bench/lib/plan.ts's), then
//            each VMM's RSS and PSS from /proc/PID/smaps, minus the resident part of its
//            guest-RAM mapping: what the VMM itself costs per VM.
//   rate:    N `vc-vmm run` processes started at once from one shell; VMs/s = N ÷ (time from
//            just before the launch to the last VM's first guest exit, as each vc-vmm reports it).
//   max:     idle VMs started in batches and kept, until the mode's limit or the first failure.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paths, qemuArgs, vmmConfig, type QemuAccel } from './lib/guests.js';
import { killPids, launchBatch, parseVmmTiming, pidAlive, readText, sleep, waitReady, type Batch, type LaunchedVm } from './lib/proc.js';
import type { DensitySection, MemorySample, MemorySection, RateRun } from './lib/results.js';
import { memAvailableKiB, parseSmaps, vmmMemory } from './lib/smaps.js';
import { median, round, summarize } from './lib/stats.js';
import type { SectionOptions } from './vmm.js';

const GUEST_MIB = 128;
const IDLE = 'vctest=idle';

function memAvailableMiB(): number {
  return memAvailableKiB(readFileSync('/proc/meminfo', 'utf8')) / 1024;
}

function builtinArgv(configPath: string): string[] {
  return [paths.vcVmm, 'run', '--config', configPath];
}

function qemuArgv(accel: QemuAccel): string[] {
  return [paths.qemu, ...qemuArgs({ accel, kernel: paths.guestElf, cmdline: IDLE, memoryMiB: GUEST_MIB })];
}

async function stopBatches(batches: Batch[]): Promise<number> {
  const pids = batches.flatMap((b) => b.vms.map((v) => v.pid));
  const left = await killPids(pids, 5000);
  await Promise.race([Promise.all(batches.map((b) => b.exited)), sleep(5000)]);
  const shellsLeft = batches.filter((b) => b.shell.pid !== undefined && pidAlive(b.shell.pid)).map((b) => b.shell.pid!);
  return left + (await killPids(shellsLeft, 1000));
}

class GuestMappingMissing extends Error {}

/** A sample again (up to twice) when a VMM's guest-RAM mapping was not found; the retries go to `notes`. */
async function memorySampleRetried(notes: string[], ...args: Parameters<typeof memorySample>): Promise<MemorySample> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await memorySample(...args);
    } catch (err) {
      if (!(err instanceof GuestMappingMissing) || attempt === 3) throw err;
      notes.push(`${args[1]} × ${args[2]}: measured again (${err.message})`);
    }
  }
}

async function memorySample(dir: string, hypervisor: 'builtin' | 'qemu', vms: number, argv: string[], timeoutScale: number): Promise<MemorySample> {
  const before = memAvailableMiB();
  const t0 = Date.now();
  const batch = await launchBatch(dir, 0, vms, argv);
  try {
    const { ready, failed } = await waitReady(batch.vms, 120000 * timeoutScale);
    if (failed.length) throw new Error(`${hypervisor} × ${vms}: ${failed.length} VMs failed, first: ${failed[0]!.why}`);
    const secondsToReady = (Date.now() - t0) / 1000;
    await sleep(500); // let lazily started threads and first-touch faults settle
    const after = memAvailableMiB();
    const smaps = ready.map((vm) => readFileSync(`/proc/${vm.pid}/smaps`, 'utf8'));
    const mems = smaps.map((text) => vmmMemory(text, GUEST_MIB));
    const lost = mems.findIndex((m) => !m.guestMappingFound);
    if (lost >= 0) {
      // Name the large anonymous mappings: the guest's may have merged with a neighbour (seen once for QEMU in L1).
      const big = parseSmaps(smaps[lost]!).filter((m) => m.name === '' && m.sizeKiB >= 64 * 1024).map((m) => `${m.perms} ${Math.round(m.sizeKiB / 1024)} MiB`);
      throw new GuestMappingMissing(`${hypervisor}: no ${GUEST_MIB} MiB guest-RAM mapping found in /proc/PID/smaps (anonymous mappings of 64 MiB or more: ${big.join(', ') || 'none'})`);
    }
    const mean = (f: (m: (typeof mems)[number]) => number) => round(mems.reduce((a, m) => a + f(m), 0) / mems.length / 1024, 3);
    return {
      hypervisor,
      vms,
      rssMiB: mean((m) => m.rssKiB),
      pssMiB: mean((m) => m.pssKiB),
      guestRssMiB: mean((m) => m.guestRssKiB),
      guestPssMiB: mean((m) => m.guestPssKiB),
      nonGuestRssMiB: mean((m) => m.nonGuestRssKiB),
      nonGuestPssMiB: mean((m) => m.nonGuestPssKiB),
      memAvailableDropPerVmMiB: round((before - after) / vms, 2),
      secondsToReady: round(secondsToReady, 2),
    };
  } finally {
    const left = await stopBatches([batch]);
    if (left) throw new Error(`${left} processes would not die after the ${hypervisor} × ${vms} sample`);
  }
}

export async function memoryBenchmarks(opts: SectionOptions & { qemuAccel: QemuAccel | null }): Promise<MemorySection> {
  const dir = mkdtempSync('/tmp/vc-bench-mem-');
  const configPath = join(dir, 'vm.json');
  writeFileSync(configPath, JSON.stringify(vmmConfig({ kernel: paths.guestElf, cmdline: IDLE, memoryMiB: GUEST_MIB, serialOutput: '-' })));
  const samples: MemorySample[] = [];
  const notes: string[] = [];
  try {
    const { plan } = opts;
    for (const n of plan.memoryCounts.builtin) {
      opts.onProgress(`memory: built-in × ${n}`);
      samples.push(await memorySampleRetried(notes, dir, 'builtin', n, builtinArgv(configPath), plan.timeoutScale));
    }
    if (opts.qemuAccel) {
      for (const n of plan.memoryCounts.qemu) {
        opts.onProgress(`memory: QEMU (${opts.qemuAccel}) × ${n}`);
        samples.push(await memorySampleRetried(notes, dir, 'qemu', n, qemuArgv(opts.qemuAccel), plan.timeoutScale));
      }
    } else notes.push('QEMU is not available: no QEMU memory figures');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Compare at the largest count both were measured at.
  const qemuCounts = new Set(samples.filter((s) => s.hypervisor === 'qemu').map((s) => s.vms));
  const common = samples.filter((s) => s.hypervisor === 'builtin' && qemuCounts.has(s.vms)).map((s) => s.vms);
  const at = common.length ? Math.max(...common) : null;
  const pick = (h: 'builtin' | 'qemu') => (at === null ? samples.filter((s) => s.hypervisor === h).at(-1) : samples.find((s) => s.hypervisor === h && s.vms === at));
  const b = pick('builtin'), q = pick('qemu');
  notes.push(
    'RSS/PSS: sums over /proc/PID/smaps; guest RAM = the anonymous mapping of exactly the guest\'s size (its resident part is what the guest touched: QEMU backs it with transparent huge pages, vc-vmm with 4 KiB pages). "Non-guest" = RSS or PSS minus that resident part: the VMM\'s own code, heap, stacks and device state.',
    'Headline overhead = non-guest RSS per VM (the stricter figure, and how Firecracker states its ≤ 5 MiB); PSS shares a page among the processes mapping it, so the static vc-vmm binary and QEMU\'s shared libraries cost less per VM as the count grows (builtinOverheadPssMiB / qemuOverheadPssMiB).',
    'MemAvailable drop per VM is system-wide (includes KVM\'s kernel-side memory per VM and the guest pages) and noisy on a shared host.',
    `guests: ${GUEST_MIB} MiB, 1 vCPU, the PVH test guest with ${IDLE} for both hypervisors; QEMU ${opts.qemuAccel ?? 'n/a'}; counts measured: built-in ${samples.filter((s) => s.hypervisor === 'builtin').map((s) => s.vms).join('/')}, QEMU ${samples.filter((s) => s.hypervisor === 'qemu').map((s) => s.vms).join('/') || 'none'}.`,
  );
  return {
    where: opts.plan.where,
    guestMiB: GUEST_MIB,
    guest: `vctest.elf ${IDLE}`,
    qemuAccel: opts.qemuAccel,
    builtinOverheadMiB: b?.nonGuestRssMiB ?? null,
    qemuOverheadMiB: q?.nonGuestRssMiB ?? null,
    overheadRatio: b && q && q.nonGuestRssMiB > 0 ? round(b.nonGuestRssMiB / q.nonGuestRssMiB, 3) : null,
    builtinOverheadPssMiB: b?.nonGuestPssMiB ?? null,
    qemuOverheadPssMiB: q?.nonGuestPssMiB ?? null,
    overheadRatioPss: b && q && q.nonGuestPssMiB > 0 ? round(b.nonGuestPssMiB / q.nonGuestPssMiB, 3) : null,
    comparedAtVms: at,
    samples,
    notes,
  };
}

async function rateRun(dir: string, configPath: string, n: number, offset: number, timeoutScale: number): Promise<RateRun> {
  const batch = await launchBatch(dir, offset, n, builtinArgv(configPath));
  let failures = 0;
  try {
    const { failed } = await waitReady(batch.vms, 60000 * timeoutScale);
    failures = failed.length;
  } finally {
    const left = await stopBatches([batch]);
    if (left) throw new Error(`${left} vc-vmm processes would not die after the rate run`);
  }
  // vc-vmm prints its timing line when it stops: the wall-clock time of its first guest exit.
  const firsts = batch.vms.flatMap((vm: LaunchedVm) => {
    const t = parseVmmTiming(readText(vm.errPath));
    return t && t.firstExitUnixMs !== null ? [t.firstExitUnixMs - batch.startedAtMs] : [];
  });
  failures = Math.max(failures, n - firsts.length);
  const seconds = firsts.length ? Math.max(...firsts) / 1000 : Number.NaN;
  return {
    vms: n,
    seconds: round(seconds, 3),
    vmsPerSecond: round(firsts.length / seconds, 1),
    perVmFirstExitMs: summarize(firsts),
    failures,
  };
}

export async function densityBenchmarks(opts: SectionOptions): Promise<DensitySection> {
  const dir = mkdtempSync('/tmp/vc-bench-dens-');
  const configPath = join(dir, 'vm.json');
  writeFileSync(configPath, JSON.stringify(vmmConfig({ kernel: paths.guestElf, cmdline: IDLE, memoryMiB: GUEST_MIB, serialOutput: '-' })));
  const notes: string[] = [];
  const rate: RateRun[] = [];
  let maxConcurrent: DensitySection['maxConcurrent'] = null;
  try {
    const { plan } = opts;
    const n = plan.rateVms, reps = plan.rateRuns;
    for (let r = 0; r < reps; r++) {
      opts.onProgress(`density: ${n} vc-vmm processes at once (${r + 1}/${reps})`);
      rate.push(await rateRun(dir, configPath, n, r * n, plan.timeoutScale));
      await sleep(300);
    }

    const limit = plan.maxVms, batchSize = plan.maxBatch;
    opts.onProgress(`density: idle VMs held at once, up to ${limit} in batches of ${batchSize}`);
    const base = 100000; // file indices apart from the rate runs'
    const batches: Batch[] = [];
    const before = memAvailableMiB();
    const t0 = Date.now();
    let reached = 0, stoppedBecause = `reached the mode's limit of ${limit} with no failure`;
    try {
      while (reached < limit) {
        const free = memAvailableMiB();
        if (free < plan.memFloorMiB) {
          stoppedBecause = plan.where === 'l0'
            ? `host MemAvailable down to ${Math.round(free)} MiB (the benchmark keeps ${plan.memFloorMiB} MiB free for the other work on this machine)`
            : `L1's MemAvailable down to ${Math.round(free)} MiB (of its ${plan.l1MemoryMiB} MiB; the benchmark keeps ${plan.memFloorMiB} MiB free for L1 itself)`;
          break;
        }
        const size = Math.min(batchSize, limit - reached);
        const batch = await launchBatch(dir, base + reached, size, builtinArgv(configPath));
        batches.push(batch);
        const { ready, failed } = await waitReady(batch.vms, 60000 * plan.timeoutScale);
        reached += ready.length;
        if (failed.length) {
          stoppedBecause = `VM ${failed[0]!.vm.index - base + 1} failed: ${failed[0]!.why}`;
          break;
        }
        if (reached % 250 === 0) opts.onProgress(`density: ${reached} VMs running`);
      }
    } finally {
      const seconds = (Date.now() - t0) / 1000;
      const drop = before - memAvailableMiB();
      opts.onProgress(`density: stopping ${batches.reduce((a, b) => a + b.vms.length, 0)} VMs`);
      const left = await stopBatches(batches);
      maxConcurrent = {
        limit,
        batch: batchSize,
        reached,
        stoppedBecause,
        seconds: round(seconds, 2),
        memAvailableDropMiB: Math.round(drop),
        leftoverProcesses: left,
      };
      if (left) notes.push(`${left} processes survived SIGTERM and SIGKILL after the max-concurrency run`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const goodRates = rate.filter((r) => r.failures === 0).map((r) => r.vmsPerSecond);
  notes.push(
    'VMs/s: all N vc-vmm processes forked at once by one shell (2 cores); the time runs from just before the shell is spawned to the latest first-guest-exit time the VMMs report, so it includes fork/exec, VM construction and the guest\'s kernel-mode entry for every VM, contending for the same cores.',
    `Held at once: idle guests (${IDLE}: halted at CPL0, no host CPU), ${GUEST_MIB} MiB each (touched lazily), started in batches and kept until the end; the count is VMs that printed "ready".`,
  );
  return {
    where: opts.plan.where,
    vmsPerSecond: goodRates.length ? median(goodRates) : null,
    rate,
    maxConcurrentVms: maxConcurrent ? (maxConcurrent as { reached: number }).reached : null,
    maxConcurrent,
    notes,
  };
}
