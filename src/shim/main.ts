/**
 * containerd-shim-virtc-v2: containerd's runtime v2 shim for virtcontainers (docs/shim.md).
 * `start` and `delete` are run by containerd; `serve` is the detached shim `start` launches.
 */
import { parseShimArgs, requireFlags, ShimUsageError } from './args.js';
import { start } from './start.js';
import { deleteTask } from './delete.js';
import { serve } from './serve.js';
import { ShimLog } from './log.js';
import { SHIM_VERSION } from './task-service.js';

export async function main(argv: readonly string[], entry: string): Promise<number> {
  let args;
  try {
    // `serve` takes the group as its one positional argument after the action.
    const serveAt = argv.indexOf('serve');
    args = parseShimArgs(serveAt >= 0 ? argv.slice(0, serveAt + 1) : argv);
    if (args.version) {
      process.stdout.write(`containerd-shim-virtc-v2:\n  Version: ${SHIM_VERSION}\n  Runtime: io.containerd.virtc.v2\n`);
      return 0;
    }
    switch (args.action) {
      case 'start':
        process.stdout.write(await start(args, entry));
        return 0;
      case 'delete': {
        const log = new ShimLog(`namespace=${args.namespace} id=${args.id} action=delete`, args.debug);
        process.stdout.write(await deleteTask(args, log));
        return 0;
      }
      case 'serve': {
        requireFlags(args, 'socket', 'namespace', 'id');
        const group = argv[serveAt + 1];
        if (!group) throw new ShimUsageError('serve: the group (sandbox or task id) is required after serve');
        return await serve(args, group);
      }
      default:
        throw new ShimUsageError('an action is required: start or delete');
    }
  } catch (err) {
    process.stderr.write(`containerd-shim-virtc-v2: ${err instanceof ShimUsageError ? '' : (args?.action ? `${args.action}: ` : '')}${(err as Error).message}\n`);
    return err instanceof ShimUsageError ? 2 : 1;
  }
}
