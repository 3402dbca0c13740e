// `virtc pod …`: the pod lifecycle from the command line; each invocation is its own process.
import { createPod, deletePod, pausePod, resumePod, startPod, stopPod } from '../api/pod.js';
import { listPods, podStatus, type PodStatus } from '../api/pod-status.js';
import { enterPod } from '../api/enter.js';
import { hypervisorKinds, type HypervisorChoice } from '../model/hypervisor.js';
import { optionalInt, optionalString, parseSpec, requireString, stringList, usageOverview, UsageError, type CommandSpec } from './args.js';
import { progressReporter } from './progress.js';
import { printTable } from './table.js';
import { attachStdio } from './stdio.js';
import { portForward, portForwardSpec } from './port-forward-command.js';
import { envFrom, processOptions, workdirFrom } from './process-flags.js';

const json = { type: 'boolean', usage: '[--json]' } as const;
const id = { type: 'string', usage: '--id ID' } as const;
const simpleVerbs = ['start', 'stop', 'pause', 'resume', 'status'] as const;
type SimpleVerb = (typeof simpleVerbs)[number];

/** Options shared by `pod create` and `run`: what the pod is. */
export const podOptions = {
  hypervisor: { type: 'string', usage: `[--hypervisor ${hypervisorKinds.join('|')}]` },
  vcpus: { type: 'string', usage: '[--vcpus N]' },
  memory: { type: 'string', usage: '[--memory MIB]' },
  network: { type: 'string', usage: '[--network none|bridge|netns:PATH]' },
  dns: { type: 'string', multiple: true, usage: '[--dns IP]...' },
} as const;

/** The pod fields of podOptions, as createPod takes them (the config's own checks name bad values). */
export function podFieldsFrom(values: Record<string, unknown>): Record<string, unknown> {
  const dns = stringList(values.dns);
  return {
    hypervisor: optionalString(values.hypervisor) as HypervisorChoice | undefined,
    vcpus: optionalInt(values.vcpus, '--vcpus'),
    memoryMiB: optionalInt(values.memory, '--memory'),
    network: optionalString(values.network),
    dns: dns.length > 0 ? { nameservers: dns } : undefined,
  };
}

/** The pod commands: their options and usage text (args.ts CommandSpec). */
const commands = {
  create: {
    words: 'pod create',
    options: {
      id, ...podOptions, template: { type: 'string', usage: '[--template NAME]' },
      kernel: { type: 'string', usage: '[--kernel PATH --modules DIR]' }, modules: { type: 'string' },
      hostname: { type: 'string', usage: '[--hostname NAME]' }, json,
    },
  },
  simple: { words: `pod ${simpleVerbs.join('|')}`, options: { id, json } },
  delete: { words: 'pod delete', options: { id, force: { type: 'boolean', short: 'f', usage: '[--force]' }, json } },
  list: { words: 'pod list', options: { json } },
  enter: {
    words: 'pod enter',
    options: {
      id, interactive: processOptions.interactive, tty: processOptions.tty, env: processOptions.env, workdir: processOptions.workdir,
    },
    tail: '-- CMD [ARG...]',
  },
} satisfies Record<string, CommandSpec>;

export const podUsage = usageOverview([...Object.values(commands), portForwardSpec]);

export async function podCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'create': return create(rest);
    case 'list': return list(rest);
    case 'delete': return remove(rest);
    case 'enter': return enter(rest);
    case 'port-forward': return portForward(rest);
    default:
      if (simpleVerbs.includes(verb as SimpleVerb)) return simple(verb as SimpleVerb, rest);
      throw new UsageError(`unknown pod command ${JSON.stringify(verb ?? '')}\nusage: ${podUsage}`);
  }
}

async function create(argv: string[]): Promise<number> {
  const { values, usage } = parseSpec(argv, commands.create);
  if ((values.kernel === undefined) !== (values.modules === undefined)) {
    throw new UsageError(`--kernel and --modules go together (got ${values.kernel ? '--kernel only' : '--modules only'})\nusage: ${usage}`);
  }
  const status = await createPod({
    id: requireString(values.id, '--id', usage),
    ...podFieldsFrom(values),
    kernel: typeof values.kernel === 'string' && typeof values.modules === 'string' ? { path: values.kernel, modulesDir: values.modules } : undefined,
    hostname: optionalString(values.hostname),
    template: optionalString(values.template),
  }, { root: optionalString(values.root), onProgress: progressReporter() });
  print(status, values.json === true);
  return 0;
}

async function remove(argv: string[]): Promise<number> {
  const { values, usage } = parseSpec(argv, commands.delete);
  const id = requireString(values.id, '--id', usage);
  await deletePod(id, { root: optionalString(values.root), onProgress: progressReporter(), force: values.force === true });
  if (values.json) console.log(JSON.stringify({ id, deleted: true }));
  return 0;
}

async function simple(verb: SimpleVerb, argv: string[]): Promise<number> {
  const { values, usage } = parseSpec(argv, commands.simple, `pod ${verb}`);
  const id = requireString(values.id, '--id', usage);
  const options = { root: optionalString(values.root), onProgress: progressReporter() };
  const action = { start: startPod, stop: stopPod, pause: pausePod, resume: resumePod, status: podStatus }[verb];
  print(await action(id, options), values.json === true);
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseSpec(argv, commands.list);
  const pods = await listPods({ root: optionalString(values.root) });
  if (values.json) {
    console.log(JSON.stringify(pods, null, 2));
    return 0;
  }
  const rows = [['ID', 'STATE', 'HYPERVISOR', 'PID', 'VCPUS', 'MEMORY', 'CREATED', 'NOTE']];
  for (const p of pods) {
    if (p.state === 'unknown') rows.push([p.id, p.state, '-', '-', '-', '-', '-', p.reason]);
    else rows.push([p.id, p.state, p.hypervisor, p.pid === null ? '-' : String(p.pid), String(p.vcpus), `${p.memoryMiB}M`, p.createdAt, noteOf(p)]);
  }
  printTable(rows);
  return 0;
}

/** What a list row adds to the state: a VMM that died, or the call running a step. */
function noteOf(status: PodStatus): string {
  if (status.vmmDied) return `VMM died: ${status.stopReason}`;
  if (status.step) return `${status.step.op} by process ${status.step.pid} since ${status.step.since}`;
  return '';
}

async function enter(argv: string[]): Promise<number> {
  const { values, positionals, usage } = parseSpec(argv, commands.enter);
  const id = requireString(values.id, '--id', usage);
  if (positionals.length === 0) throw new UsageError(`a command is required after --\nusage: ${usage}`);
  const tty = values.tty === true;
  const proc = await enterPod(id, positionals, {
    root: optionalString(values.root),
    env: envFrom(values),
    cwd: workdirFrom(values),
    tty,
    rows: tty ? process.stdout.rows : undefined,
    cols: tty ? process.stdout.columns : undefined,
  });
  return attachStdio(proc, tty);
}

function print(status: PodStatus, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(status, null, 2));
    return;
  }
  const lines = [
    ['id', status.id], ['state', status.state], ['hypervisor', `${status.hypervisor}${status.accel ? ` (${status.accel})` : ''}`],
    ['vmm pid', status.pid === null ? '-' : String(status.pid)], ['vm state', status.vmState ?? '-'], ['vcpus', String(status.vcpus)], ['memory', `${status.memoryMiB} MiB`],
    ['kernel', status.kernelRelease], ['console', status.consoleLog],
    ['network', `${status.network.mode}${status.network.netns ? ` (${status.network.netns})` : ''}`],
    ...status.network.interfaces.map((i) => ['', `${i.name} ${i.mac} mtu ${i.mtu} ${i.addresses.join(' ')}`]),
  ];
  if (status.template) lines.push(['template', `${status.template.name} (restore ${status.template.epoch})`]);
  if (status.stopReason) lines.push(['stopped', `${status.stoppedAt} (${status.stopReason})`]);
  for (const [key, value] of lines) console.log(`${key!.padEnd(11)}${value}`);
}
