// `virtc container …`: containers in a running pod, each invocation its own process.
import { createContainer, deleteContainer, startContainer, stopContainer } from '../api/container.js';
import { containerStatus, listContainers } from '../api/container-queries.js';
import type { ContainerStatus } from '../api/container-status.js';
import { attachContainer, enterContainer } from '../api/container-process.js';
import type { ContainerConfigInput } from '../model/container-config.js';
import { optionalInt, optionalString, parseSpec, requireString, usageOverview, UsageError, type CommandSpec, type ParsedCommand } from './args.js';
import { envFrom, processOptions, userFrom, workdirFrom } from './process-flags.js';
import { progressReporter } from './progress.js';
import { printTable } from './table.js';
import { securityFrom, securityOptions } from './security-flags.js';
import { attachStdio } from './stdio.js';
import { mountsFrom, volumeOptions } from './volume-flags.js';

/** Options shared by `container create` and `run`: what the container is. */
export const containerOptions = {
  rootfs: { type: 'string', usage: '[--rootfs DIR | --image REF]' }, image: { type: 'string' }, ...processOptions, ...volumeOptions,
  'memory-limit': { type: 'string', usage: '[--memory-limit MIB]' }, 'pids-limit': { type: 'string', usage: '[--pids-limit N]' },
  cpus: { type: 'string', usage: '[--cpus N]' }, ...securityOptions,
} as const;

const json = { type: 'boolean', usage: '[--json]' } as const;
const pod = { type: 'string', usage: '--pod ID' } as const;
const id = { type: 'string', usage: '--id CID' } as const;

/** The container commands: their options and usage text (args.ts CommandSpec). */
const commands = {
  create: { words: 'container create', options: { pod, id, ...containerOptions, json }, tail: '[-- CMD ARG...]' },
  start: { words: 'container start', options: { pod, id, attach: { type: 'boolean', short: 'a', usage: '[--attach]' }, json } },
  stop: {
    words: 'container stop',
    options: { pod, id, timeout: { type: 'string', usage: '[--timeout SECONDS]' }, signal: { type: 'string', usage: '[--signal SIG]' }, json },
  },
  delete: { words: 'container delete', options: { pod, id, force: { type: 'boolean', short: 'f', usage: '[--force]' }, json } },
  simple: { words: 'container status', options: { pod, id, json } },
  list: { words: 'container list', options: { pod, json } },
  enter: { words: 'container enter', options: { pod, id, ...processOptions }, tail: '-- CMD [ARG...]' },
} satisfies Record<string, CommandSpec>;

export const containerUsage = usageOverview(Object.values(commands));

export function containerConfigFrom(id: string, parsed: ParsedCommand): ContainerConfigInput {
  const { values, positionals } = parsed;
  const memoryMiB = optionalInt(values['memory-limit'], '--memory-limit');
  const pids = optionalInt(values['pids-limit'], '--pids-limit');
  const cpusText = optionalString(values.cpus);
  const cpus = cpusText === undefined ? undefined : Number(cpusText);
  if (cpus !== undefined && !(cpus > 0)) throw new UsageError(`--cpus: expected a positive number, got ${JSON.stringify(cpusText)}`);
  const limits = memoryMiB !== undefined || pids !== undefined || cpus !== undefined ? { memoryMiB, pids, cpus } : undefined;
  return {
    id,
    image: optionalString(values.image),
    rootfs: optionalString(values.rootfs),
    command: positionals.length ? positionals : undefined,
    env: envFrom(values),
    workdir: workdirFrom(values),
    user: userFrom(values),
    tty: values.tty === true,
    limits,
    mounts: mountsFrom(values),
    security: securityFrom(values),
  };
}

export async function containerCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'create': return create(rest);
    case 'start': return start(rest);
    case 'stop': return stop(rest);
    case 'delete':
    case 'status': return simple(verb, rest);
    case 'list': return list(rest);
    case 'enter': return enter(rest);
    default: throw new UsageError(`unknown container command ${JSON.stringify(verb ?? '')}\nusage: ${containerUsage}`);
  }
}

function ids(parsed: ParsedCommand, usage: string): { pod: string; id: string } {
  return { pod: requireString(parsed.values.pod, '--pod', usage), id: requireString(parsed.values.id, '--id', usage) };
}

async function create(argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, commands.create);
  const { pod, id } = ids(parsed, parsed.usage);
  const root = optionalString(parsed.values.root);
  print(await createContainer(pod, containerConfigFrom(id, parsed), { root, onProgress: progressReporter() }), parsed.values.json === true);
  return 0;
}

async function start(argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, commands.start);
  const { pod, id } = ids(parsed, parsed.usage);
  const root = optionalString(parsed.values.root);
  if (parsed.values.attach) {
    const status = await containerStatus(pod, id, { root });
    const proc = await attachContainer(pod, id, { root, start: true });
    return attachStdio(proc, status.tty);
  }
  print(await startContainer(pod, id, { root }), parsed.values.json === true);
  return 0;
}

async function stop(argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, commands.stop);
  const { pod, id } = ids(parsed, parsed.usage);
  const seconds = optionalInt(parsed.values.timeout, '--timeout');
  const signalName = optionalString(parsed.values.signal);
  const stopSignal = signalName === undefined ? undefined : (signalName.startsWith('SIG') ? signalName : `SIG${signalName}`) as NodeJS.Signals;
  print(await stopContainer(pod, id, { root: optionalString(parsed.values.root), timeoutMs: seconds === undefined ? undefined : seconds * 1000, stopSignal }), parsed.values.json === true);
  return 0;
}

async function simple(verb: 'delete' | 'status', argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, verb === 'delete' ? commands.delete : commands.simple);
  const { pod, id } = ids(parsed, parsed.usage);
  const root = optionalString(parsed.values.root);
  if (verb === 'delete') {
    await deleteContainer(pod, id, { root, force: parsed.values.force === true });
    if (parsed.values.json) console.log(JSON.stringify({ pod, id, deleted: true }));
    return 0;
  }
  print(await containerStatus(pod, id, { root }), parsed.values.json === true);
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, commands.list);
  const pod = requireString(parsed.values.pod, '--pod', parsed.usage);
  const list = await listContainers(pod, { root: optionalString(parsed.values.root) });
  if (parsed.values.json) {
    console.log(JSON.stringify(list, null, 2));
    return 0;
  }
  const rows = [['ID', 'STATE', 'PID', 'EXIT', 'COMMAND']];
  for (const c of list) rows.push([c.id, c.state, c.pid === null ? '-' : String(c.pid), exitText(c), c.argv.join(' ')]);
  printTable(rows);
  return 0;
}

async function enter(argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, commands.enter);
  const { pod, id } = ids(parsed, parsed.usage);
  if (parsed.positionals.length === 0) throw new UsageError(`a command is required after --\nusage: ${parsed.usage}`);
  const tty = parsed.values.tty === true;
  const proc = await enterContainer(pod, id, parsed.positionals, {
    root: optionalString(parsed.values.root),
    env: envFrom(parsed.values),
    cwd: workdirFrom(parsed.values),
    user: userFrom(parsed.values),
    tty,
    rows: tty ? process.stdout.rows : undefined,
    cols: tty ? process.stdout.columns : undefined,
  });
  return attachStdio(proc, tty);
}

function exitText(c: ContainerStatus): string {
  if (c.state !== 'stopped') return '-';
  if (c.oomKilled) return 'oom-killed';
  return c.signal ?? String(c.exitCode ?? '?');
}

function print(status: ContainerStatus, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(status, null, 2));
    return;
  }
  const lines: Array<[string, string]> = [
    ['pod', status.podId], ['id', status.id], ['state', status.state], ['pid', status.pid === null ? '-' : String(status.pid)],
    ['command', status.argv.join(' ')], ['image', status.image],
  ];
  if (status.state === 'stopped') lines.push(['exit', exitText(status)]);
  for (const [key, value] of lines) console.log(`${key.padEnd(9)}${value}`);
}
