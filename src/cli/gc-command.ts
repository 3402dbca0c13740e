// `virtc gc`: sweeps what belongs to no pod (api/gc.ts) and lists each thing with what it was.
import { gc } from '../api/gc.js';
import { commandUsage, optionalInt, optionalString, parseSpec, type CommandSpec } from './args.js';
import { printTable } from './table.js';

const spec = {
  words: 'gc',
  options: {
    'dry-run': { type: 'boolean', usage: '[--dry-run]' },
    'image-age': { type: 'string', usage: '[--image-age HOURS]' },
    json: { type: 'boolean', usage: '[--json]' },
  },
} satisfies CommandSpec;

export const gcUsage = commandUsage(spec);

export async function gcCommand(argv: string[]): Promise<number> {
  const { values } = parseSpec(argv, spec);
  const hours = optionalInt(values['image-age'], '--image-age');
  const report = await gc({
    root: optionalString(values.root),
    dryRun: values['dry-run'] === true,
    imageMaxAgeMs: hours === undefined ? undefined : hours * 60 * 60 * 1000,
  });
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  if (report.items.length === 0) {
    console.log('nothing to collect');
    return 0;
  }
  const rows = [['KIND', report.dryRun ? 'WOULD REMOVE' : 'REMOVED', 'WHAT']];
  for (const item of report.items) rows.push([item.kind, report.dryRun ? 'yes' : item.removed ? 'yes' : `no: ${item.error ?? 'left as is'}`, item.what]);
  printTable(rows);
  return report.items.some((item) => item.error) ? 1 : 0;
}
