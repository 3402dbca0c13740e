// Run by bench/templates.ts where /dev/kvm boots stock guests (inside the nested harness's L1
// here): measures cold-booted pods against pods from a template (bench/templates-measure.ts) and
// prints ONE line `BENCH-JSON {...}` on stdout; progress goes to stderr.
//
//   node dist/bench/templates-inside.js [--pods N] [--memory-mib N]
import { release } from 'node:os';
import { benchJsonLine } from './lib/bench-json.js';
import { errorText } from './pod-measure.js';
import { parseTemplatesInsideArgs, type TemplatesInsideArgs, type TemplatesInsideReport } from './templates-format.js';
import { measureTemplates } from './templates-measure.js';

async function main(): Promise<void> {
  let args: TemplatesInsideArgs;
  try {
    args = parseTemplatesInsideArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`templates-inside: ${errorText(err)}\n`);
    process.exit(2);
  }
  let result: TemplatesInsideReport['result'];
  try {
    result = await measureTemplates(args, { timeoutMs: 240_000, onProgress: (msg) => process.stderr.write(`${msg}\n`) });
  } catch (err) {
    result = { error: errorText(err) };
  }
  const report: TemplatesInsideReport = { version: 1, kernel: release(), nestedL1: process.env.VC_NESTED_L1 === '1', args, result };
  process.stdout.write(benchJsonLine(report));
}

await main();
