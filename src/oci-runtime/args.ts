/**
 * runc's command line as engines use it: global flags, then a command, its flags and its
 * arguments. Flags are Go-style (`-name` or `--name`, a value after `=` or as the next word,
 * booleans bare or `=true|false`); flags end at the first plain argument or `--`. Anything this
 * runtime does not know is an error naming it — never ignored.
 */
export class UsageError extends Error {
  /** The global flags, when they parsed before the error: its log is where the error goes too. */
  global?: GlobalOptions;
}

type FlagKind = 'string' | 'bool' | 'list';
interface FlagSpec {
  kind: FlagKind;
  /** Other spellings (short forms). */
  aliases?: readonly string[];
}
type FlagTable = Readonly<Record<string, FlagSpec>>;

const s = (...aliases: string[]): FlagSpec => ({ kind: 'string', aliases });
const b = (...aliases: string[]): FlagSpec => ({ kind: 'bool', aliases });
const l = (...aliases: string[]): FlagSpec => ({ kind: 'list', aliases });

export const GLOBAL_FLAGS: FlagTable = {
  root: s(),
  log: s(),
  'log-format': s(),
  debug: b(),
  'systemd-cgroup': b(),
  version: b('v'),
  help: b('h'),
};

/** Each command's flags and how many plain arguments it takes ([min, max]; max -1 = any). */
export const COMMANDS: Readonly<Record<string, { flags: FlagTable; args: [number, number]; usage: string }>> = {
  create: {
    flags: { bundle: s('b'), 'pid-file': s(), 'console-socket': s(), 'no-pivot': b(), 'no-new-keyring': b() },
    args: [1, 1], usage: 'create --bundle DIR [--pid-file F] [--console-socket S] ID',
  },
  start: { flags: {}, args: [1, 1], usage: 'start ID' },
  state: { flags: {}, args: [1, 1], usage: 'state ID' },
  kill: { flags: { all: b('a') }, args: [1, 2], usage: 'kill [--all] ID [SIGNAL]' },
  delete: { flags: { force: b('f') }, args: [1, 1], usage: 'delete [--force] ID' },
  exec: {
    flags: {
      process: s('p'), tty: b('t'), detach: b('d'), 'pid-file': s(), 'console-socket': s(),
      cwd: s(), env: l('e'), user: s('u'),
    },
    args: [1, -1], usage: 'exec [--process F | ID COMMAND [ARG...]] [--tty] [--detach] [--pid-file F] ID',
  },
  ps: { flags: { format: s('f') }, args: [1, -1], usage: 'ps [--format table|json] ID' },
  pause: { flags: {}, args: [1, 1], usage: 'pause ID' },
  resume: { flags: {}, args: [1, 1], usage: 'resume ID' },
  update: {
    flags: {
      resources: s('r'), memory: s('m'), 'memory-reservation': s(), 'memory-swap': s(), 'kernel-memory': s(),
      'cpu-quota': s(), 'cpu-period': s(), 'cpu-share': s(), 'cpuset-cpus': s(), 'cpuset-mems': s(), 'pids-limit': s(),
    },
    args: [1, 1], usage: 'update [--resources FILE | --memory N --cpu-quota N ...] ID',
  },
  features: { flags: {}, args: [0, 0], usage: 'features' },
  list: { flags: { format: s('f'), quiet: b('q') }, args: [0, 0], usage: 'list [--format table|json] [--quiet]' },
  /** Internal: the per-root daemon `create` starts (docs/oci-runtime.md). */
  daemon: { flags: {}, args: [0, 0], usage: 'daemon' },
};

export type FlagValues = Record<string, string | boolean | string[]>;

export interface GlobalOptions {
  root: string;
  log: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
  version: boolean;
  help: boolean;
}

export interface ParsedArgs {
  global: GlobalOptions;
  command: string;
  flags: FlagValues;
  args: string[];
}

export const DEFAULT_ROOT = '/run/virtc-runtime';

/** Parses flags from argv[from]; returns the values and where the plain arguments begin. */
function parseFlags(argv: readonly string[], from: number, table: FlagTable, command: string): { values: FlagValues; next: number } {
  const where = command ? `${command}: ` : '';
  const byName = new Map<string, string>();
  for (const [name, spec] of Object.entries(table)) {
    byName.set(name, name);
    for (const alias of spec.aliases ?? []) byName.set(alias, name);
  }
  const values: FlagValues = {};
  let i = from;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return { values, next: i + 1 };
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const given = eq >= 0 ? body.slice(0, eq) : body;
    const name = byName.get(given);
    if (!name) throw new UsageError(`${where}unknown flag ${JSON.stringify(arg.slice(0, eq >= 0 ? arg.indexOf('=') : undefined))}`);
    const spec = table[name]!;
    if (spec.kind === 'bool') {
      const text = eq >= 0 ? body.slice(eq + 1) : 'true';
      if (text !== 'true' && text !== 'false') throw new UsageError(`${where}flag --${name}: expected true or false, got ${JSON.stringify(text)}`);
      values[name] = text === 'true';
      continue;
    }
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`${where}flag --${name} needs a value`);
    if (spec.kind === 'list') values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else values[name] = value;
  }
  return { values, next: i };
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const { values: g, next } = parseFlags(argv, 0, GLOBAL_FLAGS, '');
  const format = (g['log-format'] as string | undefined) ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`flag --log-format: expected text or json, got ${JSON.stringify(format)}`);
  const global: GlobalOptions = {
    root: (g.root as string | undefined) || DEFAULT_ROOT,
    log: (g.log as string | undefined) ?? '',
    logFormat: format,
    debug: g.debug === true,
    systemdCgroup: g['systemd-cgroup'] === true,
    version: g.version === true,
    help: g.help === true,
  };
  try {
    return parseCommand(argv, next, global);
  } catch (err) {
    if (err instanceof UsageError) err.global = global;
    throw err;
  }
}

function parseCommand(argv: readonly string[], next: number, global: GlobalOptions): ParsedArgs {
  const command = argv[next];
  if (command === undefined) {
    if (global.version || global.help) return { global, command: '', flags: {}, args: [] };
    throw new UsageError(`a command is required (${Object.keys(COMMANDS).filter((c) => c !== 'daemon').join(', ')})`);
  }
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const { values: flags, next: first } = parseFlags(argv, next + 1, spec.flags, command);
  const args = argv.slice(first);
  const [min, max] = spec.args;
  if (args.length < min) throw new UsageError(`${command}: ${min === 1 ? 'the container id is' : `${min} arguments are`} required (usage: virtc-runtime ${spec.usage})`);
  if (max >= 0 && args.length > max) throw new UsageError(`${command}: unexpected argument ${JSON.stringify(args[max])} (usage: virtc-runtime ${spec.usage})`);
  return { global, command, flags, args };
}

/** runc's container id rule: letters, digits and `_+-.`, not empty; ours also bounds the length. */
export function checkContainerId(id: string): string {
  if (!/^[A-Za-z0-9_+.-]{1,128}$/.test(id) || id === '.' || id === '..') {
    throw new UsageError(`invalid container id ${JSON.stringify(id)}: expected 1-128 letters, digits, or _ + - .`);
  }
  return id;
}

export function flagString(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}
