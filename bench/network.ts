// The network benchmark (issue 13 item 7): TCP throughput host → guest, guest → host and guest ↔
// guest, and round trips, the built-in VMM's virtio-net against QEMU's (tap, vhost=off), side by
// side in one run. The measurements (bench/network-measure.ts) run in dist/bench/network-inside.js
// in a network namespace of its own (`unshare --net`, lo up), never in the caller's: on this host
// when its /dev/kvm runs stock guests (both hypervisors on KVM), else inside one L1 VM of the
// nested-KVM harness (its own boot, separate from the pod section's), where QEMU uses L1's KVM too.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LineSplitter } from './lib/bench-json.js';
import { runBenchInL1, safeProbe } from './lib/in-l1.js';
import { track, untrack } from './lib/proc.js';
import type { Where } from './lib/results.js';
import { round } from './lib/stats.js';
import {
  networkInsideArgv, networkSection, parseNetworkReport, skippedNetwork,
  type NetworkInsideArgs, type NetworkInsideReport, type NetworkSection,
} from './network-format.js';

const INSIDE = fileURLToPath(new URL('./network-inside.js', import.meta.url));
/** The inside script under a network namespace of its own: `"$0" "$@"` is node, the script, its argv. */
export const OWN_NETNS = ['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"'];
/** network-inside reports every measurement; one takes seconds to a minute in L1. */
const SILENCE_MS = 6 * 60_000;

export interface NetworkBenchmarkOptions {
  full: boolean;
  onProgress: (msg: string) => void;
}

/**
 * The plan of a run: rounds, bytes per transfer, round trips and pings per round. In L1 everything
 * is emulated (≈ 0.2–10 MiB/s, round trips of 5–40 ms), so the transfers are small there; with real
 * KVM at L0 they are large enough to take a second or more. Quick in L1 has 5 rounds: with 3, one
 * noisy round moved a median by 2× (host → guest 1.26× one run, 0.69× the next, same code).
 */
export function networkPlan(full: boolean, where: Where): NetworkInsideArgs {
  const which: NetworkInsideArgs['which'] = ['builtin', 'qemu'];
  if (where === 'l0') {
    return full
      ? { runs: 7, bytes: 1024 << 20, roundTrips: 10_000, pings: 1000, which }
      : { runs: 3, bytes: 256 << 20, roundTrips: 2000, pings: 200, which };
  }
  return full
    ? { runs: 7, bytes: 16 << 20, roundTrips: 500, pings: 100, which }
    : { runs: 5, bytes: 4 << 20, roundTrips: 100, pings: 20, which };
}

export async function networkBenchmarks(opts: NetworkBenchmarkOptions): Promise<NetworkSection> {
  const progress = (msg: string) => opts.onProgress(`network: ${msg}`);
  const probe = safeProbe();
  const where: Where = probe.stockGuests ? 'l0' : 'l1';
  const args = networkPlan(opts.full, where);
  progress(`${args.which.join(' and ')} ${where === 'l0' ? 'on this host (its /dev/kvm runs stock guests)' : `in one L1 VM of the nested-KVM harness (/dev/kvm here: ${probe.reason ?? 'no stock guests'})`}, ` +
    `in a network namespace of their own: ${args.runs} rounds, ${args.bytes >> 20} MiB per transfer, ${args.roundTrips} TCP round trips and ${args.pings} pings per round`);
  const timeoutMs = (opts.full ? 60 : 20) * 60_000;
  let report: NetworkInsideReport;
  let l1: NetworkSection['l1'] = null;
  if (where === 'l0') {
    report = parseNetworkReport(await runHere(networkInsideArgv(args), timeoutMs, progress));
  } else {
    const r = await runBenchInL1({
      script: INSIDE,
      wrapper: OWN_NETNS,
      argv: networkInsideArgv(args),
      timeoutMs,
      silenceMs: SILENCE_MS,
      parse: parseNetworkReport,
      onProgress: progress,
    });
    report = r.report;
    l1 = { kernel: report.kernel, bootSeconds: round(r.bootMs / 1000, 1), totalSeconds: round(r.totalMs / 1000, 1), ...(r.failure ? { failed: r.failure.split('\n')[0]! } : {}), ...(r.rerunAfter ? { rerunAfter: r.rerunAfter } : {}) };
    if (r.failure) progress(`L1 failed after round ${report.roundsDone}; keeping what it reported: ${r.failure}`);
  }
  const section = networkSection(report, where);
  section.l1 = l1;
  section.notes.push(...networkNotes(section, report));
  return section;
}

/** network-inside on this host, under `unshare --net`; its stdout (the reports) when it exits 0. */
export async function runHere(argv: string[], timeoutMs: number, progress: (msg: string) => void): Promise<string> {
  const [cmd, ...rest] = [...OWN_NETNS, process.execPath, INSIDE, ...argv];
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child.pid);
  let out = '';
  const lines = new LineSplitter();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => lines.feed(d).forEach((l) => progress(l)));
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const [code, signal] = (await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])))) as [number | null, string | null];
  clearTimeout(timer);
  untrack(child.pid);
  lines.end().forEach((l) => progress(l));
  if (code !== 0) {
    // Rounds reported before a failure are kept.
    try {
      parseNetworkReport(out);
      progress(`network-inside ended with ${signal ?? `exit code ${code}`} after reporting`);
      return out;
    } catch {
      throw new Error(`network-inside ended with ${signal ?? `exit code ${code}`}${signal === 'SIGTERM' ? ` (no result within ${timeoutMs / 60_000} min)` : ''}`);
    }
  }
  return out;
}

function networkNotes(s: NetworkSection, report: NetworkInsideReport): string[] {
  const notes: string[] = [];
  if (s.where === 'l1') {
    notes.push('Both hypervisors ran in L1, a QEMU TCG VM whose kvm_amd runs the pods: L1\'s kernel (bridge, veths, taps, tc), the VMMs and every exit of the guests are emulated instruction by instruction, so the absolute figures are many times lower than on real hardware. Compare the two hypervisors through the ratios; the figures do not compare with other hosts.');
  }
  notes.push(
    `Pods: 2 per hypervisor (A, B), ${256} MiB, 1 vCPU, the Debian cloud kernel, the default busybox image, on the default bridge network (CNI bridge vc0, ${report.gateway ?? '10.231.0.1'} in the bench's own network namespace, a tap mirrored to each pod's veth by tc); all four run during the whole measurement.`,
    `Host → guest: \`nc -l -p P -e wc -c\` in pod A, the bench (Node, in the namespace that holds vc0) connects, sends ${s.bytesPerTransfer >> 20} MiB in 1 MiB writes, half-closes and reads the count: timed from the connection to the count, which is checked.`,
    'Guest → host: `dd if=/dev/zero bs=64k | nc GATEWAY P` in pod A to a Node server in the bench\'s namespace, timed from its accept to the sender\'s EOF; the byte count is checked.',
    'Guest ↔ guest: `nc -l -p P -e wc -c` in pod B, `dd … | nc B P` in pod A, timed in pod A with busybox `adjtimex` before and after (the guest\'s clock, µs): from before dd starts to the count B sends back after its EOF, so it includes starting dd and nc in the guest and the connection setup.',
    `Round trips: \`nc -l -p P -e cat\` in pod A; the bench sends 1 byte and waits for it back, ${s.roundTripsPerRun} times per round on one connection (TCP_NODELAY), after the warm-up; p50/p99 over all rounds. Ping: \`ping -A -c ${s.pingsPerRun}\` (the next request as soon as the reply is in) from pod A to pod B, the times ping prints (guest clock, ms with 3 decimals).`,
    'Ratios: median(built-in) ÷ median(QEMU) for throughput, QEMU\'s p50 ÷ the built-in VMM\'s for round trips; ≥ 1 means the built-in VMM is at least as good. "per round" is the same ratio of the two transfers of each round, which were measured next to each other.',
    'Untimed warm-up per hypervisor first: 3 pings, 1 MiB each way, 20 round trips. The machine has 2 cores and is shared with other work.',
  );
  for (const h of report.args.which) {
    const m = report.results[h];
    if (m && !('error' in m) && m.pingSent > m.pingReceived) notes.push(`${h}: ${m.pingSent - m.pingReceived} of ${m.pingSent} pings were lost.`);
  }
  if (report.roundsDone < report.args.runs) notes.push(`Only ${report.roundsDone} of ${report.args.runs} rounds completed.`);
  return notes;
}


export { skippedNetwork };
