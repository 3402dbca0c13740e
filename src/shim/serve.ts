/**
 * The long-lived shim (`serve`, run detached by `start`): the Task service on its socket, events to
 * containerd, logs to the bundle's FIFO. It says "ready" on fd 3 once it listens, so `start` prints
 * the address only when containerd can connect, and exits after Shutdown finds no task left.
 */
import { closeSync, writeSync } from 'node:fs';
import { bindService } from './ttrpc/typed.js';
import { TtrpcServer } from './ttrpc/server.js';
import { TASK_SERVICE, type TaskMethods } from './proto/task.js';
import { EventPublisher } from './publisher.js';
import { ShimLog } from './log.js';
import { TaskService } from './task-service.js';
import { podIdFor, shimRoot } from './pod-group.js';
import type { ShimArgs } from './args.js';

export async function serve(args: ShimArgs, group: string): Promise<number> {
  const log = new ShimLog(`namespace=${args.namespace} id=${args.id} pid=${process.pid}`, args.debug);
  log.openBundleLog(process.cwd());
  const events = new EventPublisher(process.env.TTRPC_ADDRESS ?? '', args.namespace, log);
  const server = new TtrpcServer({ onError: (err) => log.warn(`ttrpc: ${err.message}`) });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => { stop = resolve; });
  const tasks = new TaskService({
    namespace: args.namespace,
    podId: podIdFor(group),
    options: { root: shimRoot(args.namespace), onProgress: (m) => log.debug(m) },
    log,
    events,
    onShutdown: stop,
    compact,
  });
  server.register(TASK_SERVICE, bindService<TaskMethods>(TASK_SERVICE, logged(tasks.handlers(), log)));
  await server.listen(args.socket);
  tellReady();
  log.info(`serving pod ${podIdFor(group)} on ${args.socket}`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => { log.info(`${signal}: shutting down`); stop(); });
  await stopped;
  log.info(`shutting down with ${tasks.taskCount} task(s) left`);
  await tasks.close();
  await events.close();
  await server.close();
  log.close();
  return 0;
}

/** Each call and its failure in the debug log; failures that are not the caller's also as warnings. */
function logged<H extends Record<string, (request: never, call: never) => unknown>>(handlers: H, log: ShimLog): H {
  const out: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(handlers)) {
    out[method] = async (request: never, call: never) => {
      log.debug(`${method} ${JSON.stringify(request, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v))}`);
      try {
        return await handler(request, call);
      } catch (err) {
        log.debug(`${method} failed: ${(err as Error).message}`);
        throw err;
      }
    };
  }
  return out as H;
}

/** A full collection once the shim is idle again (gc is exposed by SERVE_NODE_FLAGS). */
let compactTimer: NodeJS.Timeout | null = null;
function compact(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || compactTimer) return;
  compactTimer = setTimeout(() => {
    compactTimer = null;
    gc();
  }, 1000);
  compactTimer.unref();
}

/** fd 3 is `start`'s pipe: one line, then closed, so nothing else can block on it. */
function tellReady(): void {
  try {
    writeSync(3, 'ready\n');
    closeSync(3);
  } catch {
    // Run by hand without the pipe: nobody waits.
  }
}
