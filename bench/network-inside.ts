// Run by bench/network.ts in a network namespace of its own (`unshare --net`, lo up), inside the
// nested-KVM harness's L1 or on a host whose /dev/kvm runs stock guests: the network measurements
// for the hypervisors named on the command line (bench/network-measure.ts), printing a line
// `BENCH-JSON {...}` on stdout after every round (the caller takes the last one, so a later hang
// loses only the unfinished rounds); progress goes to stderr.
//
//   unshare --net -- sh -c 'ip link set lo up && exec node dist/bench/network-inside.js [--runs N] [--bytes N] [--round-trips N] [--pings N] builtin|qemu ...'
import { release } from 'node:os';
import { hostNamespaceProblem } from '../test/helpers/network.js';
import { benchJsonLine } from './lib/bench-json.js';
import { measureNetwork } from './network-measure.js';
import { parseNetworkInsideArgs, type NetworkInsideArgs, type NetworkInsideReport } from './network-format.js';
import { errorText } from './pod-measure.js';

async function main(): Promise<void> {
  let args: NetworkInsideArgs;
  try {
    args = parseNetworkInsideArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`network-inside: ${errorText(err)}\n`);
    process.exit(2);
  }
  // The pods' bridge, veths and routes are made in this namespace: never the caller's.
  const problem = hostNamespaceProblem();
  if (problem) {
    process.stderr.write(`network-inside: refusing to run: ${problem}\n`);
    process.exit(2);
  }
  const t0 = Date.now();
  const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  const report = (r: Omit<NetworkInsideReport, 'version' | 'kernel' | 'nestedL1' | 'args'>) =>
    process.stdout.write(benchJsonLine({ version: 1, kernel: release(), nestedL1: process.env.VC_NESTED_L1 === '1', args, ...r } satisfies NetworkInsideReport));
  progress(`network: ${args.which.join(' and ')}, ${args.runs} rounds, ${args.bytes >> 20} MiB per transfer, ${args.roundTrips} round trips, ${args.pings} pings`);
  try {
    const r = await measureNetwork({ ...args, keepPods: process.env.VC_NESTED_L1 === '1', onProgress: progress, onRound: (roundsDone, results, gateway) => report({ roundsDone, results, gateway }) });
    report(r);
  } catch (err) {
    progress(`FAILED: ${errorText(err)}`);
    report({ roundsDone: 0, gateway: null, results: Object.fromEntries(args.which.map((w) => [w, { error: errorText(err) }])) });
  }
}

await main();
