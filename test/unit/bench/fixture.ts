// A results object for the writer and target tests of test/unit/bench (not a test file itself).
import type { BenchResults } from '../../../bench/lib/results.js';
import { computeTargets } from '../../../bench/lib/targets.js';

/** A quick run at L0 with every section measured (figures chosen to exercise each verdict). */
export function sampleResults(): BenchResults {
  const s = (median: number) => ({ n: 10, median, p95: median * 1.5, min: median / 2, max: median * 2, mean: median });
  const r = {
    schema: 2,
    date: '2025-01-02T03:04:05.000Z',
    mode: 'quick',
    only: null,
    durationSeconds: 42,
    host: { cpuModel: 'CPU <x> & y', cores: 2, memoryGiB: 24, kernel: '6.1', kvmFlavor: 'kvm_pvm', qemuVersion: 'QEMU 7.2', node: '20', loadAverage: [1, 1, 1] },
    l1: null,
    vmmStart: {
      where: 'l0', runs: 10, guest: { image: 'vctest.elf', cmdline: 'vctest=hello', memoryMiB: 128, vcpus: 1 }, qemuAccel: 'kvm', qemuAccelNote: 'ran | ok', qemuCommand: [],
      builtinInprocessMs: s(2), builtinProcessMs: s(8), qemuMs: s(80), speedupVsQemu: 10, speedupVsQemuReady: 7,
      variants: {
        'built-in, in-process': { firstInstructionMs: s(2), readyMs: s(6), failures: [] },
        'built-in, process': { firstInstructionMs: s(8), readyMs: s(11), failures: [], parts: { spawnToVmmMainMs: s(4) } },
        'QEMU (kvm)': { firstInstructionMs: s(80), readyMs: s(84), failures: ['one'] },
      },
      kvmFloorMs: s(0.6), kvmFloorDetail: null, notes: ['a note'],
    },
    memory: {
      where: 'l0', guestMiB: 128, guest: 'vctest.elf vctest=idle', qemuAccel: 'kvm', builtinOverheadMiB: 1.3, qemuOverheadMiB: 33, overheadRatio: 0.039,
      builtinOverheadPssMiB: 0.3, qemuOverheadPssMiB: 14, overheadRatioPss: 0.02, comparedAtVms: 10,
      samples: [
        { hypervisor: 'builtin', vms: 10, rssMiB: 1.6, pssMiB: 0.6, guestRssMiB: 0.3, guestPssMiB: 0.3, nonGuestRssMiB: 1.3, nonGuestPssMiB: 0.3, memAvailableDropPerVmMiB: 0.5, secondsToReady: 0.1 },
        { hypervisor: 'qemu', vms: 10, rssMiB: 35, pssMiB: 16, guestRssMiB: 2, guestPssMiB: 2, nonGuestRssMiB: 33, nonGuestPssMiB: 14, memAvailableDropPerVmMiB: 9, secondsToReady: 1 },
      ],
      notes: [],
    },
    density: {
      where: 'l0', vmsPerSecond: 300, rate: [{ vms: 100, seconds: 0.33, vmsPerSecond: 300, perVmFirstExitMs: s(180), failures: 0 }],
      maxConcurrentVms: 200,
      maxConcurrent: { limit: 200, batch: 50, reached: 200, stoppedBecause: 'limit', seconds: 2, memAvailableDropMiB: 300, leftoverProcesses: 0 },
      notes: [],
    },
    lifecycle: { where: 'l1', builtin: { stepsMs: { total: { p50: 100 } } }, raw: [1, 2, 3, 4, 5, 6] },
    agent: {
      where: 'l1',
      execRoundTripP50Ms: { builtin: 1.5, qemuKvm: 2, qemuTcg: 0.5 },
      stdoutMBps: { builtin: 300, qemuKvm: 200, qemuTcg: 900 },
      stdinMBps: { builtin: 100, qemuKvm: 400, qemuTcg: { error: 'boom' } },
    },
    podNotes: ['pods note'],
    targets: {},
    errors: [{ section: 'x', message: 'boom' }],
    notes: [],
  } as unknown as BenchResults;
  r.targets = computeTargets(r);
  return r;
}
