// Run by bench/host-sections.ts inside the nested-KVM harness's L1 (on hosts whose /dev/kvm cannot
// run the test guests): the host sections with the L1 plan's counts, the same code as at L0, and a
// line `BENCH-JSON {...}` on stdout with the three sections after each section (the host takes the
// last one, so a later hang loses only what had not finished); progress goes to stderr.
//
//   node dist/bench/hosts-inside.js [--full] --sections vmm,memory,density
import { runHostSectionsHere, errorText, type Errors } from './host-sections.js';
import { parseHostsInsideArgs, type HostsInsideArgs, type HostsInsideReport } from './hosts-format.js';
import { benchJsonLine } from './lib/bench-json.js';
import { hostInfo } from './lib/guests.js';
import { hostPlan } from './lib/plan.js';
import { killTracked, killTrackedSync } from './lib/proc.js';

async function main(): Promise<void> {
  let args: HostsInsideArgs;
  try {
    args = parseHostsInsideArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`hosts-inside: ${errorText(err)}\n`);
    process.exit(2);
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { killTrackedSync(); process.exit(130); });
  // Labelled by where it really runs: L1 normally, L0 if run by hand on a host.
  const plan = hostPlan(args.full, process.env.VC_NESTED_L1 === '1' ? 'l1' : 'l0');
  const t0 = Date.now();
  const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  const host = hostInfo();
  progress(`inside: ${host.cpuModel}, ${host.cores} vCPUs, ${host.memoryGiB} GiB, Linux ${host.kernel}, /dev/kvm ${host.kvmFlavor}, ${host.qemuVersion ?? 'no QEMU'}`);
  const errors: Errors = [];
  // A report after each section (the host takes the last): if L1 hangs or dies later, what finished is kept.
  const report = (sofar: Omit<HostsInsideReport, 'version' | 'host' | 'errors'>) =>
    process.stdout.write(benchJsonLine({ version: 1, host, ...sofar, errors } satisfies HostsInsideReport));
  const sections = await runHostSectionsHere(args.sections, plan, { errors, progress, onSection: report });
  const left = await killTracked();
  if (left) errors.push({ section: 'cleanup', message: `${left} benchmark processes survived SIGTERM and SIGKILL` });
  report(sections);
}

await main();
