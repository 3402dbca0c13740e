// Pods from a template against cold-booted pods (issue 18 item 3), the built-in VMM, side by side
// in one run: start → agent ready and PSS per idle pod with N of a kind running. Where /dev/kvm
// boots stock guests it runs here; otherwise (this host's PVM /dev/kvm) inside one L1 VM of the
// nested-KVM harness, through dist/bench/templates-inside.js.
import { fileURLToPath } from 'node:url';
import { runBenchInL1, safeProbe } from './lib/in-l1.js';
import type { Where } from './lib/results.js';
import { errorText } from './pod-measure.js';
import { parseTemplatesReport, templatesInsideArgv, templatesSection, type TemplatesInsideArgs, type TemplatesSection } from './templates-format.js';
import { measureTemplates } from './templates-measure.js';

const INSIDE = fileURLToPath(new URL('./templates-inside.js', import.meta.url));
const SILENCE_MS = 6 * 60_000;

export async function templateBenchmarks(opts: { full: boolean; onProgress: (msg: string) => void }): Promise<TemplatesSection> {
  const progress = (msg: string) => opts.onProgress(`templates: ${msg}`);
  // 10 pods of each kind is what the target names; 256 MiB pods as in the pods section.
  const args: TemplatesInsideArgs = { pods: 10, memoryMiB: 256 };
  const probe = safeProbe();
  const where: Where = probe.stockGuests ? 'l0' : 'l1';
  const notes = [
    `${args.pods} pods cold-booted one after another (start → agent ready each), then, with all ${args.pods} running and ${3} s after the last came up, the PSS of each pod's VMM process tree (smaps_rollup); the pods are stopped, a template is made (createTemplate: a pod booted, its agent ready, snapshotted, stopped) and ${args.pods} pods are started from it and measured the same way. ${args.memoryMiB} MiB, 1 vCPU, the built-in VMM.`,
    'startVsColdBoot is the median start → agent ready from the template ÷ the cold median; pssVsColdBoot the mean PSS per pod from the template ÷ the cold mean. A template pod maps the template\'s memory file MAP_PRIVATE: pages it has not written are shared with every other pod from the template, and PSS splits them among the pods.',
  ];
  try {
    if (where === 'l0') {
      progress(`here (this host's /dev/kvm boots stock guests): ${args.pods} pods of each kind`);
      const m = await measureTemplates(args, { timeoutMs: 240_000, onProgress: progress });
      return templatesSection(m, args, where, notes);
    }
    progress(`in one L1 VM of the nested-KVM harness (/dev/kvm here: ${probe.reason ?? 'no stock guests'}): ${args.pods} pods of each kind`);
    const r = await runBenchInL1({
      script: INSIDE,
      argv: templatesInsideArgv(args),
      timeoutMs: (opts.full ? 40 : 25) * 60_000,
      silenceMs: SILENCE_MS,
      parse: parseTemplatesReport,
      onProgress: progress,
    });
    notes.push(`L1 (kernel ${r.report.kernel}) booted in ${(r.bootMs / 1000).toFixed(1)} s; the nested part took ${(r.totalMs / 1000).toFixed(1)} s. Absolute times in L1 are inflated many-fold (an emulated machine); the two kinds ran in the same L1, so their ratios are the figures to read.`);
    if (r.failure) notes.push(`L1 failed after reporting: ${r.failure.split('\n')[0]}`);
    if (r.rerunAfter) notes.push(`An earlier L1 stopped under this section (${r.rerunAfter}); these figures are from its rerun in a fresh L1.`);
    return templatesSection(r.report.result, args, where, notes);
  } catch (err) {
    return templatesSection({ error: errorText(err) }, args, where, notes);
  }
}
