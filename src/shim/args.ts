/**
 * The command line containerd gives a runtime v2 shim: Go-style flags (`-name value`,
 * `-name=value`, `--name value`, booleans bare) then one action (`start`, `delete`; ours adds the
 * internal `serve`, which `start` runs detached). An unknown flag or action is an error naming it.
 */
export interface ShimArgs {
  namespace: string;
  /** containerd's gRPC socket. */
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  debug: boolean;
  version: boolean;
  action: 'start' | 'delete' | 'serve' | '';
  /** `serve` only: the socket to listen on. */
  socket: string;
}

const stringFlags = { namespace: 'namespace', address: 'address', 'publish-binary': 'publishBinary', id: 'id', bundle: 'bundle', socket: 'socket' } as const;
const boolFlags = { debug: 'debug', v: 'version', version: 'version' } as const;
const actions = ['start', 'delete', 'serve'] as const;

export class ShimUsageError extends Error {}

export function parseShimArgs(argv: readonly string[]): ShimArgs {
  const out: ShimArgs = { namespace: '', address: '', publishBinary: '', id: '', bundle: '', debug: false, version: false, action: '', socket: '' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) {
      if (out.action) throw new ShimUsageError(`unexpected argument ${JSON.stringify(arg)} after action ${out.action}`);
      if (!(actions as readonly string[]).includes(arg)) throw new ShimUsageError(`unknown action ${JSON.stringify(arg)} (expected start or delete)`);
      out.action = arg as ShimArgs['action'];
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name in boolFlags) {
      const value = eq >= 0 ? body.slice(eq + 1) : 'true';
      if (value !== 'true' && value !== 'false') throw new ShimUsageError(`flag -${name}: expected true or false, got ${JSON.stringify(value)}`);
      out[boolFlags[name as keyof typeof boolFlags]] = value === 'true';
      continue;
    }
    if (!(name in stringFlags)) throw new ShimUsageError(`unknown flag ${JSON.stringify(arg)}`);
    let value: string | undefined;
    if (eq >= 0) value = body.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new ShimUsageError(`flag -${name} needs a value`);
    out[stringFlags[name as keyof typeof stringFlags]] = value;
  }
  return out;
}

/** Checks what an action needs, naming the missing flag. */
export function requireFlags(args: ShimArgs, ...names: Array<keyof typeof stringFlags>): void {
  for (const name of names) {
    if (!args[stringFlags[name]]) throw new ShimUsageError(`${args.action || 'shim'}: flag -${name} is required`);
  }
}
