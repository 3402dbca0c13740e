// `virtc template …`: pod templates (docs/snapshots.md) — a booted pod snapshotted once, from which
// `virtc run --template NAME` (or createPod({ template })) starts pods without a boot.
import { createTemplate, deleteTemplate, listTemplates, verifyTemplate, type TemplateInfo } from '../api/template.js';
import { optionalString, parseSpec, usageOverview, UsageError, type CommandSpec } from './args.js';
import { podFieldsFrom, podOptions } from './pod-commands.js';
import { progressReporter } from './progress.js';
import { printTable } from './table.js';

const json = { type: 'boolean', usage: '[--json]' } as const;

const commands = {
  create: {
    words: 'template create NAME',
    options: {
      ...podOptions,
      kernel: { type: 'string', usage: '[--kernel PATH --modules DIR]' }, modules: { type: 'string' },
      hostname: { type: 'string', usage: '[--hostname NAME]' }, json,
    },
  },
  list: { words: 'template list', options: { json } },
  delete: { words: 'template delete NAME', options: { force: { type: 'boolean', short: 'f', usage: '[--force]' } } },
  verify: { words: 'template verify NAME', options: { json } },
} satisfies Record<string, CommandSpec>;

export const templateUsage = usageOverview(Object.values(commands));

export async function templateCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'create': return create(rest);
    case 'list': return list(rest);
    case 'delete': return remove(rest);
    case 'verify': return verify(rest);
    default:
      throw new UsageError(`unknown template command ${JSON.stringify(verb ?? '')}\nusage: ${templateUsage}`);
  }
}

/** The one NAME a command takes. */
function nameFrom(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected one template NAME, got ${positionals.length === 0 ? 'none' : positionals.map((p) => JSON.stringify(p)).join(' ')}\nusage: ${usage}`);
  return positionals[0]!;
}

async function create(argv: string[]): Promise<number> {
  const { values, positionals, usage } = parseSpec(argv, commands.create);
  const name = nameFrom(positionals, usage);
  if ((values.kernel === undefined) !== (values.modules === undefined)) {
    throw new UsageError(`--kernel and --modules go together (got ${values.kernel ? '--kernel only' : '--modules only'})\nusage: ${usage}`);
  }
  const info = await createTemplate({
    name,
    ...podFieldsFrom(values),
    kernel: typeof values.kernel === 'string' && typeof values.modules === 'string' ? { path: values.kernel, modulesDir: values.modules } : undefined,
    hostname: optionalString(values.hostname),
  } as Parameters<typeof createTemplate>[0], { root: optionalString(values.root), onProgress: progressReporter() });
  if (values.json) console.log(JSON.stringify(info, null, 2));
  else console.log(`template ${info.name}: ${info.vcpus} vCPU, ${info.memoryMiB} MiB, ${mib(info.bytes.memory)} memory file (${info.vmmVersion})`);
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseSpec(argv, commands.list);
  const templates = await listTemplates({ root: optionalString(values.root) });
  if (values.json) {
    console.log(JSON.stringify(templates, null, 2));
    return 0;
  }
  const rows = [['NAME', 'VCPUS', 'MEMORY', 'FILES', 'VMM', 'CREATED', 'USED BY']];
  for (const t of templates) rows.push([t.name, String(t.vcpus), `${t.memoryMiB}M`, filesOf(t), t.vmmVersion, t.createdAt, t.usedBy.join(',') || '-']);
  printTable(rows);
  return 0;
}

async function remove(argv: string[]): Promise<number> {
  const { values, positionals, usage } = parseSpec(argv, commands.delete);
  await deleteTemplate(nameFrom(positionals, usage), { root: optionalString(values.root), force: values.force === true });
  return 0;
}

async function verify(argv: string[]): Promise<number> {
  const { values, positionals, usage } = parseSpec(argv, commands.verify);
  const check = await verifyTemplate(nameFrom(positionals, usage), { root: optionalString(values.root) });
  if (values.json) console.log(JSON.stringify(check, null, 2));
  else console.log(`template ${check.name}: intact (${check.vcpus} vCPU state, ${mib(check.ramBytes)} of RAM, CRC-32C ${check.ramCrc})`);
  return 0;
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
const filesOf = (t: TemplateInfo) => `${mib(t.bytes.state + t.bytes.memory)}`;
