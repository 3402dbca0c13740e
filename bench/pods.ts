// Pod lifecycle and agent I/O benchmarks (issue 6, items 2 and 3), side by side in one run:
// the built-in VMM and QEMU with KVM inside one L1 VM of the nested-KVM harness (this host's PVM
// /dev/kvm cannot boot a stock kernel; docs/nested-harness.md), and QEMU with TCG on the host as a
// reference. The nested part runs dist/bench/pods-inside.js in L1, which prints one BENCH-JSON line.
import { fileURLToPath } from 'node:url';
import { runBenchInL1, safeProbe } from './lib/in-l1.js';
import type { Where } from './lib/results.js';
import { errorText, measureHypervisor, measureInterleaved } from './pod-measure.js';
import {
  agentSection, builtinVsQemuKvm, HOST_WHERE, insideArgv, lifecycleEntry, NESTED_WHERE, parseBenchJson,
  type BenchHypervisor, type InsideArgs, type Measured,
} from './pods-format.js';

const INSIDE = fileURLToPath(new URL('./pods-inside.js', import.meta.url));
const POD_MEMORY_MIB = 256;
/** L1 is given up after this long without a line of output. */
const SILENCE_MS = 6 * 60_000;

export interface PodBenchmarkOptions {
  full: boolean;
  onProgress: (msg: string) => void;
}

export async function podBenchmarks(opts: PodBenchmarkOptions): Promise<{ lifecycle: Record<string, unknown>; agent: Record<string, unknown>; notes: string[] }> {
  const progress = (msg: string) => opts.onProgress(`pods: ${msg}`);
  const runs = opts.full ? 7 : 3;
  const execs = opts.full ? 200 : 30;
  // Nested, agent I/O runs at ≈ 1.5–3 MB/s (L1 is emulated), once per lifecycle run: 8 MiB each
  // way per run keeps the quick run short.
  const bytes = (opts.full ? 32 : 8) << 20;
  const results: Partial<Record<BenchHypervisor, Measured>> = {};
  const notes: string[] = [];
  const where: Record<BenchHypervisor, string> = { builtin: NESTED_WHERE, qemuKvm: NESTED_WHERE, qemuTcg: HOST_WHERE };

  const probe = safeProbe();
  if (probe.stockGuests) {
    // Real KVM here (e.g. inside L1 itself): no nesting needed, and QEMU picks KVM, so there is no TCG reference.
    where.builtin = where.qemuKvm = HOST_WHERE;
    progress(`builtin and qemuKvm on the host (its /dev/kvm runs stock guests), runs interleaved`);
    const [builtin, qemuKvm] = await measureInterleaved((['builtin', 'qemuKvm'] as const).map((which) => ({
      which, runs, execs, ioBytes: bytes, memoryMiB: POD_MEMORY_MIB, onProgress: progress,
    })));
    results.builtin = builtin;
    results.qemuKvm = qemuKvm;
    results.qemuTcg = { error: 'not measured: QEMU uses KVM on this host (its /dev/kvm runs stock guests), so there is no TCG reference' };
    notes.push('This host\'s /dev/kvm runs stock guests: the built-in VMM and QEMU-KVM were measured on the host directly, not in the nested-KVM harness.');
  } else {
    const args: InsideArgs = { runs, execs, bytes, which: ['builtin', 'qemuKvm'] };
    progress(`builtin and qemuKvm in one L1 VM of the nested-KVM harness (${runs} lifecycle runs each, ${execs} execs, ${bytes >> 20} MiB each way); /dev/kvm here: ${probe.reason ?? 'no stock guests'}`);
    try {
      const r = await runBenchInL1({
        script: INSIDE,
        argv: insideArgv(args),
        timeoutMs: (opts.full ? 45 : 15) * 60_000,
        silenceMs: SILENCE_MS,
        parse: parseBenchJson,
        onProgress: progress,
      });
      const report = r.report;
      results.builtin = report.results.builtin ?? { error: 'missing from the L1 report' };
      results.qemuKvm = report.results.qemuKvm ?? { error: 'missing from the L1 report' };
      notes.push(`L1 (kernel ${report.kernel}, 2 vCPUs, 4 GiB, QEMU TCG with an emulated EPYC+SVM CPU) booted in ${(r.bootMs / 1000).toFixed(1)} s; the nested part took ${(r.totalMs / 1000).toFixed(1)} s in all.`);
      if (r.rerunAfter) notes.push(`An earlier L1 stopped under this section (${r.rerunAfter}); these figures are from its rerun in a fresh L1.`);
    } catch (err) {
      // The full message (with L1's console tail) goes to the progress output; the results get its first line.
      const message = errorText(err);
      progress(`nested L1 failed: ${message}`);
      const error = `nested L1: ${message.split('\n')[0]}`;
      results.builtin = { error };
      results.qemuKvm = { error };
    }

    progress(`qemuTcg on the host (${runs} lifecycle runs, ${execs} execs, ${bytes >> 20} MiB each way)`);
    results.qemuTcg = await measureHypervisor({ which: 'qemuTcg', runs, execs, ioBytes: bytes, memoryMiB: POD_MEMORY_MIB, onProgress: progress });
  }

  // The section's headline (builtin vs qemuKvm) is from where those two ran; qemuTcg's entry says its own place.
  const sectionWhere: Where = probe.stockGuests ? 'l0' : 'l1';
  const lifecycle: Record<string, unknown> = {
    where: sectionWhere,
    builtin: lifecycleEntry(results.builtin, where.builtin),
    qemuKvm: lifecycleEntry(results.qemuKvm, where.qemuKvm),
    qemuTcg: lifecycleEntry(results.qemuTcg, where.qemuTcg),
  };
  lifecycle.builtinVsQemuKvm = builtinVsQemuKvm(lifecycle.builtin as Record<string, unknown>, lifecycle.qemuKvm as Record<string, unknown>);
  const agent = { where: sectionWhere, ...agentSection(results), execs, ioBytes: bytes };

  if (!probe.stockGuests) {
    notes.push(
      'builtin and qemuKvm run inside L1, a QEMU TCG VM: L1\'s kernel, node, the VMMs and every nested VM exit are emulated instruction by instruction (≈ 20–30× slower than the host), so their absolute times are inflated many-fold. Compare builtin with qemuKvm (same L1, same run) through the ratios, not the absolutes, and not with qemuTcg.',
      'In L1, createPod takes seconds for both hypervisors alike: it reads and hashes the initrd\'s inputs (agent, busybox, modules) to find the cached initrd, which the emulated CPU does slowly; startToReady is where the hypervisors differ.',
      'qemuTcg runs on the host with TCG (this host\'s PVM /dev/kvm cannot boot a stock kernel): a reference for what a user here gets, not a like-for-like comparison with the nested pair.',
    );
  }
  notes.push(
    `Lifecycle: ${runs} runs per hypervisor after an untimed warm-up (the VMM's --version, one createPod/deletePod); builtin and qemuKvm take turns run by run; pods of ${POD_MEMORY_MIB} MiB, 1 vCPU, the Debian cloud kernel, each on a fresh temporary root. startToReady is the startPod call (VMM start until the agent answers); enterTrue is enterPod(['true']) until its exit status; total is the sum of the five steps. Percentiles are nearest-rank (bench/lib/stats.ts): with 3 runs p50 is the middle run and p95 the slowest; samplesMs holds every run.`,
    'builtinVsQemuKvm: the built-in VMM\'s p50 divided by QEMU-KVM\'s; below 1 means the built-in VMM is faster.',
    `Agent I/O on every lifecycle run's pod, between its enterTrue and stop steps (outside the timed steps), so each hypervisor has one sample per run and their turns alternate: the figures swing by 2× from one moment to the next on this shared host, and a single transfer decided nothing. An exec round trip is a whole enterPod: reading the pod's state, checking its VMM process, a new agent connection and handshake, exec, exit status (2 untimed warm-ups, then ${execs} per run; p50/p99 over all runs). Throughput is ${bytes >> 20} MiB per run through \`head -c N /dev/zero\` (stdout, guest→host) and into \`wc -c\` (stdin, host→guest, count checked), timed from enterPod to the exit status, in MB/s of 10^6 bytes; the figure is the median over the runs (every sample in stdoutSamplesMBps / stdinSamplesMBps).`,
    'execBreakdown (one per run): more execs of `true`, each timed step by step as enterPod takes them — hostState (reading the pod record, checking its VMM process: host client only), channel (opening the agent channel and its hello: the host client, the VMM and the agent), execRequest (exec request to its answer: the agent spawns the process), exit (answer to the EXIT frame: the process runs, the agent reaps it) — and CPU ms per exec over the batch: hostClient (this Node process), vmmProcess (the VMM process, all threads), guest (the guest\'s busy time from its /proc/stat: agent, kernel, the program; the two execs that read it add a little), vmmOwn = vmmProcess − guest (the VMM\'s own work, as its vCPU threads\' time includes the guest\'s). /proc/stat counts in 10 ms ticks: per-exec CPU figures are averages over the batch.',
    'Agent channels: the built-in VMM\'s is hybrid vsock (virtio-vsock in the guest, a Unix socket on the host); QEMU\'s is a virtio-serial port on a Unix-socket chardev (no /dev/vhost-vsock on these machines).',
    'The machine has 2 cores and is shared with other work; runs side by side in one session are comparable, runs on different days less so.',
  );
  for (const h of ['builtin', 'qemuKvm', 'qemuTcg'] as const) {
    const m = results[h];
    if (m && !('error' in m) && m.lifecycleError) notes.push(`${h}: a run failed (${m.lifecycleError}); its figures are the other runs'.`);
  }
  return { lifecycle, agent, notes };
}

