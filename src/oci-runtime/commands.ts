/**
 * The CLI's commands: each a short-lived process that asks the root's daemon (starting it for
 * `create`), spawns a holder for `create` and `exec`, or reads the container's record (`state`,
 * `list`). `delete` works without a daemon too, from the record alone. Engines run `state` often:
 * what only some commands need (the spec parser, the API) is loaded by those commands alone.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { checkContainerId, flagString, UsageError, type ParsedArgs } from './args.js';
import { call, daemonAnswers, DaemonUnavailable } from './daemon-client.js';
import { CrashPoints } from '../crash-points.js';
import { ensureDaemon } from './daemon-start.js';
import { OCI_VERSION } from './features.js';
import { spawnHolder, type SpawnedHolder } from './holder-spawn.js';
import type { HookState, SpecHooks } from './hooks.js';
import { exitStatusNumber } from './holder-link.js';
import { parseSignal } from './signals.js';
import { daemonSocket, listRecordIds, netnsPin, podsRoot, processAlive, readRecord, removeRecord, type ContainerRecord } from './state-store.js';
import { updateResources } from './update-resources.js';
import type { RuntimeLog } from './log.js';

export interface CommandContext {
  args: ParsedArgs;
  log: RuntimeLog;
  /** The CLI's own script, to start the daemon with. */
  entry: string;
  out(text: string): void;
}

/** runc writes the pid file whole (temp + rename), so a reader never sees half a number. */
function writePidFile(path: string, pid: number): void {
  const tmp = join(dirname(path), `.${Date.now()}.${process.pid}.pid`);
  writeFileSync(tmp, String(pid));
  renameSync(tmp, path);
}

function existing(root: string, id: string): ContainerRecord {
  const record = readRecord(root, id);
  if (!record) throw new Error(`container "${id}" does not exist`);
  return record;
}

export async function runCommand(ctx: CommandContext): Promise<number> {
  const { args } = ctx;
  const { root } = args.global;
  const socket = daemonSocket(root);
  const id = args.args[0] ? checkContainerId(args.args[0]) : '';
  const ask = async (body: Record<string, unknown>, timeoutMs?: number) => {
    if (!(await daemonAnswers(socket))) {
      existing(root, id);
      throw new Error(`container "${id}": no daemon serves ${root} (it stopped or crashed); \`delete --force ${id}\` removes what is left`);
    }
    return call(socket, { ...body, id }, timeoutMs);
  };
  switch (args.command) {
    case 'create': return create(ctx, id);
    case 'start': {
      await ask({ op: 'start' });
      await afterHooks(ctx, existing(root, id), 'poststart');
      return 0;
    }
    case 'state': ctx.out(`${JSON.stringify(ociState(existing(root, id)), null, 2)}\n`); return 0;
    case 'kill': {
      const signal = parseSignal(args.args[1]);
      await ask({ op: 'kill', signal, all: args.flags.all === true });
      return 0;
    }
    case 'delete': return remove(ctx, id, args.flags.force === true);
    case 'exec': return exec(ctx, id);
    case 'ps': {
      const format = flagString(args.flags, 'format') ?? 'table';
      if (format !== 'table' && format !== 'json') throw new UsageError(`ps: flag --format: expected table or json, got ${JSON.stringify(format)}`);
      const reply = await ask({ op: 'ps' });
      const pids = reply.pids as number[];
      ctx.out(format === 'json' ? `${JSON.stringify(pids)}\n` : `PID\n${pids.map((p) => `${p}\n`).join('')}`);
      return 0;
    }
    case 'pause': await ask({ op: 'pause' }); return 0;
    case 'resume': await ask({ op: 'resume' }); return 0;
    case 'update': {
      const reply = await ask({ op: 'update', resources: updateResources(args.flags) });
      for (const w of (reply.warnings as string[] | undefined) ?? []) ctx.log.warn(w);
      return 0;
    }
    case 'features': ctx.out(`${JSON.stringify((await import('./features-document.js')).features(), null, 2)}\n`); return 0;
    case 'list': return list(ctx);
    default: throw new UsageError(`unknown command ${JSON.stringify(args.command)}`);
  }
}

/** The OCI state document; a container whose holder has gone without an exit recorded is stopped. */
export function ociState(record: ContainerRecord): Record<string, unknown> {
  let status: string = record.status;
  if (status === 'deleting') status = 'stopped';
  if ((status === 'created' || status === 'running' || status === 'paused') && record.holderPid > 0 && !processAlive(record.holderPid)) status = 'stopped';
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    status,
    pid: status === 'stopped' ? 0 : record.holderPid,
    bundle: record.bundle,
    rootfs: '',
    created: record.createdAt,
    owner: '',
    annotations: record.annotations,
  };
}

async function create(ctx: CommandContext, id: string): Promise<number> {
  const { flags, global } = ctx.args;
  const bundle = resolve(flagString(flags, 'bundle') || process.cwd());
  const consoleSocket = flagString(flags, 'console-socket');
  // What runc refuses up front: a terminal needs a console socket to send it to, and the reverse.
  const { readBundleSpec, specNetwork } = await import('../oci/spec.js');
  const spec = await readBundleSpec(bundle);
  const { runHooks, specHooks } = await import('./hooks.js');
  const hooks = specHooks(spec);
  if (spec.process.terminal && !consoleSocket) throw new UsageError('create: process.terminal is true: --console-socket is required to hand the terminal to');
  if (!spec.process.terminal && consoleSocket) throw new UsageError('create: --console-socket was given but process.terminal is false (no terminal to send)');
  const socket = daemonSocket(global.root);
  // Each step below leaves something an engine's `delete --force` must undo if this process dies there.
  const steps = new CrashPoints('runtimeCreate');
  for (let attempt = 1; ; attempt++) {
    await ensureDaemon(global.root, ctx.entry, global.debug);
    try {
      await call(socket, { op: 'create', id, bundle }, 10 * 60_000);
      steps.reach('record-made');
      break;
    } catch (err) {
      // The daemon was leaving (idle) as this create reached it: it began nothing; a new one will.
      if (!(err instanceof DaemonUnavailable) || attempt === 2) throw err;
    }
  }
  // runc's order: the container's host process and namespaces, the hooks on the host, then the
  // container (here its pod, which takes the network the hooks put into the holder's namespace).
  let holder: SpawnedHolder | undefined;
  try {
    const ownNetns = specNetwork(spec).kind === 'new';
    holder = await spawnHolder({
      socket, id, ...(ownNetns ? { newNetns: netnsPin(global.root, id) } : {}),
      ...(consoleSocket ? { consoleSocket: resolve(consoleSocket) } : {}),
    });
    steps.reach('holder-spawned');
    await call(socket, { op: 'holder', id, pid: holder.pid, netns: ownNetns });
    steps.reach('holder-recorded');
    const state: HookState = { ociVersion: OCI_VERSION, id, status: 'creating', pid: holder.pid, bundle, annotations: spec.annotations };
    await runHooks(hooks, 'prestart', state);
    steps.reach('prestart-hooks-run');
    await runHooks(hooks, 'createRuntime', state);
    steps.reach('createRuntime-hooks-run');
    await call(socket, { op: 'make', id }, 10 * 60_000);
    steps.reach('container-made');
    const pidFile = flagString(flags, 'pid-file');
    if (pidFile) writePidFile(resolve(pidFile), holder.pid);
    steps.reach('pid-file-written');
  } catch (err) {
    if (holder && processAlive(holder.pid)) process.kill(holder.pid, 'SIGKILL');
    await call(socket, { op: 'delete', id, force: true }).catch(() => {});
    throw err;
  }
  return 0;
}

/** poststart and poststop: run on the host from the bundle's spec; a failure is only logged. */
async function afterHooks(ctx: CommandContext, record: ContainerRecord, kind: 'poststart' | 'poststop'): Promise<void> {
  const { runHooksLogged, specHooks } = await import('./hooks.js');
  let hooks: SpecHooks;
  try {
    const { readBundleSpec } = await import('../oci/spec.js');
    hooks = specHooks(await readBundleSpec(record.bundle));
  } catch (err) {
    ctx.log.warn(`container ${record.id}: ${kind} hooks not run: ${(err as Error).message}`);
    return;
  }
  const running = kind === 'poststart';
  const state: HookState = {
    ociVersion: OCI_VERSION, id: record.id, status: running ? 'running' : 'stopped', bundle: record.bundle, annotations: record.annotations,
    ...(running ? { pid: record.holderPid } : {}),
  };
  await runHooksLogged(hooks, kind, state, (message) => ctx.log.warn(`container ${record.id}: ${message}`));
}

async function exec(ctx: CommandContext, id: string): Promise<number> {
  const { flags, global } = ctx.args;
  const socket = daemonSocket(global.root);
  existing(global.root, id);
  const processFile = flagString(flags, 'process');
  const command = ctx.args.args.slice(1);
  if (processFile && command.length) throw new UsageError('exec: give either --process FILE or a command, not both');
  const body: Record<string, unknown> = { op: 'exec', id, execId: `exec-${randomBytes(6).toString('hex')}` };
  let terminal: boolean;
  if (processFile) {
    try {
      body.process = JSON.parse(readFileSync(processFile, 'utf8'));
    } catch (err) {
      throw new UsageError(`exec: --process ${processFile}: ${(err as Error).message}`);
    }
    terminal = (body.process as { terminal?: unknown }).terminal === true;
  } else {
    if (!command.length) throw new UsageError('exec: a command (or --process FILE) is required after the container id');
    terminal = flags.tty === true;
    body.overrides = {
      args: command, env: (flags.env as string[] | undefined) ?? [], tty: terminal,
      ...(flagString(flags, 'cwd') ? { cwd: flagString(flags, 'cwd') } : {}),
      ...(flagString(flags, 'user') ? { user: flagString(flags, 'user') } : {}),
    };
  }
  const consoleSocket = flagString(flags, 'console-socket');
  if (terminal && !consoleSocket && flags.detach === true) throw new UsageError('exec: a detached process with a terminal needs --console-socket');
  if (!(await daemonAnswers(socket))) throw new Error(`container "${id}": no daemon serves ${global.root}`);
  await call(socket, body);
  // Answered once the holder has said hello and the process started (or failed).
  const started = call(socket, { op: 'exec-wait', id, execId: body.execId });
  started.catch(() => {});
  let holder;
  try {
    holder = await spawnHolder({ socket, id, exec: body.execId as string, ...(consoleSocket ? { consoleSocket: resolve(consoleSocket) } : {}) });
  } catch (err) {
    // The daemon's own answer says why the process did not start, when it has one.
    await started;
    throw err;
  }
  await started;
  const pidFile = flagString(flags, 'pid-file');
  if (pidFile) writePidFile(resolve(pidFile), holder.pid);
  if (flags.detach === true) return 0;
  const exit = await holder.exited;
  if (exit.signal) return exitStatusNumber({ kind: 'signalled', value: (constants.signals as Record<string, number>)[exit.signal] ?? 127 });
  return exit.code ?? 255;
}

async function remove(ctx: CommandContext, id: string, force: boolean): Promise<number> {
  const { root } = ctx.args.global;
  const socket = daemonSocket(root);
  const before = readRecord(root, id);
  if (await daemonAnswers(socket)) {
    await call(socket, { op: 'delete', id, force });
    if (before) await afterHooks(ctx, before, 'poststop');
    return 0;
  }
  // No daemon: nothing runs any more that it relayed; undo what the record says.
  const record = existing(root, id);
  if (!force && record.status !== 'stopped' && processAlive(record.holderPid)) {
    throw new Error(`cannot delete container "${id}" that is not stopped: ${record.status} (use --force)`);
  }
  if (processAlive(record.holderPid)) process.kill(record.holderPid, 'SIGKILL');
  const { removeFromApi } = await import('./container-create.js');
  await removeFromApi(record, { root: podsRoot(root) });
  await removeRecord(root, id);
  await afterHooks(ctx, record, 'poststop');
  return 0;
}

function list(ctx: CommandContext): number {
  const { root } = ctx.args.global;
  const states = listRecordIds(root).flatMap((id) => {
    try {
      const record = readRecord(root, id);
      return record ? [ociState(record)] : [];
    } catch {
      return [];
    }
  });
  if (ctx.args.flags.quiet === true) ctx.out(states.map((s) => `${String(s.id)}\n`).join(''));
  else if (ctx.args.flags.format === 'json') ctx.out(`${JSON.stringify(states)}\n`);
  else ctx.out(`ID\tPID\tSTATUS\tBUNDLE\tCREATED\n${states.map((s) => `${String(s.id)}\t${String(s.pid)}\t${String(s.status)}\t${String(s.bundle)}\t${String(s.created)}\n`).join('')}`);
  return 0;
}
