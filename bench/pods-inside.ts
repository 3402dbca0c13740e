// Run by bench/pods.ts inside the nested-KVM harness's L1 (where /dev/kvm boots stock guests):
// measures the pod lifecycle and agent I/O for the hypervisors named on the command line (their
// runs interleaved) and prints ONE line `BENCH-JSON {...}` on stdout; progress goes to stderr.
//
//   node dist/bench/pods-inside.js [--runs N] [--execs N] [--bytes N] builtin|qemuKvm ...
import { release } from 'node:os';
import { errorText, measureInterleaved, type HypervisorMeasurement } from './pod-measure.js';
import { benchJsonLine } from './lib/bench-json.js';
import { parseInsideArgs, type BenchHypervisor, type InsideArgs, type InsideReport } from './pods-format.js';

async function main(): Promise<void> {
  let args: InsideArgs;
  try {
    args = parseInsideArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`pods-inside: ${errorText(err)}\n`);
    process.exit(2);
  }
  const results: Partial<Record<BenchHypervisor, HypervisorMeasurement | { error: string }>> = {};
  try {
    const measured = await measureInterleaved(args.which.map((which) => ({
      which, runs: args.runs, execs: args.execs, ioBytes: args.bytes,
      onProgress: (msg: string) => process.stderr.write(`${msg}\n`),
    })));
    for (const m of measured) results[m.which] = m;
  } catch (err) {
    for (const which of args.which) results[which] = { error: errorText(err) };
  }
  const report: InsideReport = { version: 1, kernel: release(), nestedL1: process.env.VC_NESTED_L1 === '1', args, results };
  process.stdout.write(benchJsonLine(report));
}

await main();
