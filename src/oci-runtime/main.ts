/**
 * virtc-runtime: an OCI runtime with runc's command line (docs/oci-runtime.md), so podman (through
 * conmon) and docker (through containerd's runc shim) run containers in VM pods. Errors go to
 * stderr and to `--log` in `--log-format`; a usage error or a failure exits 1, as runc's do.
 */
import { COMMANDS, parseArgs, UsageError, type ParsedArgs } from './args.js';
import { runCommand } from './commands.js';
import { versionText } from './features.js';
import { RuntimeLog } from './log.js';

function usage(): string {
  const lines = Object.entries(COMMANDS).filter(([name]) => name !== 'daemon').map(([, c]) => `  virtc-runtime [global flags] ${c.usage}`);
  return `usage:\n${lines.join('\n')}\nglobal flags: --root DIR (default /run/virtc-runtime), --log FILE, --log-format text|json, --debug, --systemd-cgroup, --version\n`;
}

export async function main(argv: readonly string[], entry: string): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    // With the global flags read, the error goes to their log too; else to stderr only.
    const g = (err as UsageError).global;
    if (g) new RuntimeLog(g.log, g.logFormat, g.debug).error((err as Error).message);
    else process.stderr.write(`virtc-runtime: ${(err as Error).message}\n`);
    return 1;
  }
  const { global } = args;
  const log = new RuntimeLog(global.log, global.logFormat, global.debug);
  if (global.version && !args.command) {
    process.stdout.write(versionText());
    return 0;
  }
  if (global.help && !args.command) {
    process.stdout.write(usage());
    return 0;
  }
  if (global.systemdCgroup) log.debug('--systemd-cgroup: accepted; the container\'s cgroup is inside its VM, so there is no host cgroup to hand to systemd');
  try {
    if (args.command === 'daemon') return await (await import('./daemon.js')).runDaemon(global.root, global.debug);
    log.debug(`${args.command} ${args.args.join(' ')}`);
    return await runCommand({ args, log, entry, out: (text) => process.stdout.write(text) });
  } catch (err) {
    const message = (err as Error).message;
    log.error(err instanceof UsageError ? message : `${args.command}: ${message}`);
    return 1;
  }
}
