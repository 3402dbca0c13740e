/**
 * containerd's Task service on the public API: each task a container in the group's pod, each
 * exec a process entered into it. Handlers answer with gRPC statuses containerd understands
 * (NotFound, AlreadyExists, FailedPrecondition, InvalidArgument, Unimplemented) and publish the
 * task events in order: TaskCreate → TaskStart → TaskExit → TaskDelete, and per exec TaskExecAdded
 * → TaskExecStarted → TaskExit.
 */
import { createContainer, deleteContainer, startContainer } from '../api/container.js';
import { attachContainer, enterContainer } from '../api/container-process.js';
import { killContainer } from '../api/container-signal.js';
import { containerStatus } from '../api/container-queries.js';
import { watchContainerMounts } from '../api/container-mounts.js';
import { copyContainerMountsOut } from '../api/container-mounts-out.js';
import { deletePod, stopPod } from '../api/pod.js';
import { forwardNetnsLoopback, type NetnsLoopbackForwarder } from '../api/netns-loopback-forward.js';
import type { CallOptions } from '../api/context.js';
import type { Empty, MessageInit } from './proto/messages.js';
import { timestampFromDate } from './proto/messages.js';
import type { TaskMethods } from './proto/task.js';
import { TaskStatus } from './proto/task.js';
import type { ServiceHandlers } from './ttrpc/typed.js';
import { RpcError, StatusCode } from './ttrpc/errors.js';
import { containerFromSpec, processFields, supportedFields } from '../oci/container-from-spec.js';
import { containerConfigSchema } from '../model/container-config.js';
import { parseProcess, readBundleSpec, specNetwork, specRootPath, type SpecNetwork } from '../oci/spec.js';
import { asRpcError, bringUpPod, podConfigFor, podIsRunning, taskRole } from './pod-group.js';
import { containerIdFor } from '../oci/pod-annotations.js';
import { exitStatusOf, ShimProcess, VM_GONE_EXIT_STATUS } from './processes.js';
import { mountRootfs, snapshotCacheKey, unmountRootfs } from './rootfs.js';
import { openStdio, type StdioPaths } from './stdio.js';
import type { EventPublisher } from './publisher.js';
import type { ShimLog } from './log.js';
import { TaskExtras } from './task-extras.js';

export const SHIM_VERSION = 'virtc-shim 1';

const CONTAINER_FIELDS: ReadonlySet<string> = new Set(Object.keys(containerConfigSchema.shape));

export interface ShimContext {
  namespace: string;
  /** The pod this shim serves and whether it has been brought up. */
  podId: string;
  options: CallOptions;
  log: ShimLog;
  events: EventPublisher;
  /** Called when Shutdown finds no task left (or is told `now`). */
  onShutdown(): void;
  /** Called after a burst of allocation (a create, a delete) to give memory back once idle. */
  compact?(): void;
}

class Task {
  readonly execs = new Map<string, ShimProcess>();
  paused = false;
  /** Host bind mounts copied in: kept fresh while the task lives, written back when it exits. */
  hostMounts: Array<{ readOnly?: boolean }> = [];
  mountWatch: { close(): void } | null = null;
  readonly containerId: string;
  constructor(
    readonly id: string,
    readonly bundle: string,
    readonly init: ShimProcess,
    /** The task whose delete takes the pod down: a lone task or the sandbox. */
    readonly ownsPod: boolean,
    readonly rootfsMounted: boolean,
  ) {
    this.containerId = containerIdOf(id);
  }
}

type Handlers = Required<ServiceHandlers<TaskMethods>>;
const empty: MessageInit<Empty> = {};

export class TaskService {
  readonly #tasks = new Map<string, Task>();
  #podUp = false;
  #podHostname: string | undefined;
  /** CRI's PortForward dials 127.0.0.1 in the sandbox's netns: this takes it into the VM. */
  #loopback: NetnsLoopbackForwarder | null = null;
  readonly #extras: TaskExtras;

  constructor(private readonly ctx: ShimContext) {
    this.#extras = new TaskExtras(ctx);
  }

  get taskCount(): number {
    return this.#tasks.size;
  }

  handlers(): Handlers {
    return {
      State: (r) => this.#state(r.id, r.execId),
      Create: (r) => this.#create(r),
      Start: (r) => this.#start(r.id, r.execId),
      Delete: (r) => this.#delete(r.id, r.execId),
      Pids: async (r) => ({ processes: await this.#extras.pids(this.#task(r.id)) }),
      Pause: async (r) => { await this.#pause(r.id, true); return empty; },
      Resume: async (r) => { await this.#pause(r.id, false); return empty; },
      Checkpoint: () => { throw new RpcError(StatusCode.Unimplemented, 'checkpoint is not supported by the virtc runtime (a VM snapshot is a later feature)'); },
      Kill: async (r) => { await this.#kill(r.id, r.execId, r.signal, r.all); return empty; },
      Exec: async (r) => { this.#addExec(r.id, r.execId, r); return empty; },
      ResizePty: async (r) => {
        const p = this.#process(r.id, r.execId);
        if (p.state !== 'stopped' && p.proc) await p.proc.resize(r.height, r.width).catch((err) => { throw asRpcError(err, 'resize'); });
        return empty;
      },
      CloseIO: (r) => {
        const p = this.#process(r.id, r.execId);
        if (r.stdin && p.proc) {
          p.io?.stdin?.unpipe(p.proc.stdin);
          p.proc.stdin.end();
        }
        return empty;
      },
      Update: async (r) => { await this.#extras.update(this.#task(r.id), r.resources); return empty; },
      Wait: async (r) => {
        const exit = await this.#process(r.id, r.execId).exited;
        return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) };
      },
      Stats: async (r) => ({ stats: await this.#extras.stats(this.#task(r.id)) }),
      Connect: (r) => {
        const task = this.#tasks.get(r.id);
        return { shimPid: process.pid, taskPid: task?.init.pid ?? 0, version: SHIM_VERSION };
      },
      Shutdown: (r) => {
        if (r.now || this.#tasks.size === 0) setImmediate(() => this.ctx.onShutdown());
        return empty;
      },
    };
  }

  #task(id: string): Task {
    const task = this.#tasks.get(id);
    if (!task) throw new RpcError(StatusCode.NotFound, `task ${id} not found in this shim`);
    return task;
  }

  /** The container of another task whose init has `pid` (as Create returned it). */
  #containerOfPid(pid: number, except: string): string | undefined {
    for (const task of this.#tasks.values()) {
      if (task.id !== except && task.init.pid === pid && pid > 0) return task.containerId;
    }
    return undefined;
  }

  #process(id: string, execId: string): ShimProcess {
    const task = this.#task(id);
    if (!execId) return task.init;
    const p = task.execs.get(execId);
    if (!p) throw new RpcError(StatusCode.NotFound, `exec ${execId} of task ${id} not found`);
    return p;
  }

  #state(id: string, execId: string): MessageInit<TaskMethods['State'][1]> {
    const task = this.#task(id);
    const p = this.#process(id, execId);
    const status = !execId && task.paused && p.state === 'running' ? TaskStatus.Paused : p.taskStatus;
    return {
      id: execId || id,
      execId,
      bundle: task.bundle,
      pid: p.pid,
      status,
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.stdio.terminal,
      exitStatus: p.exit?.status ?? 0,
      exitedAt: p.exit ? timestampFromDate(p.exit.at) : null,
    };
  }

  async #create(r: TaskMethods['Create'][0]): Promise<MessageInit<TaskMethods['Create'][1]>> {
    if (this.#tasks.has(r.id)) throw new RpcError(StatusCode.AlreadyExists, `task ${r.id} exists already`);
    if (r.checkpoint) throw new RpcError(StatusCode.Unimplemented, 'creating a task from a checkpoint is not supported');
    const { ctx } = this;
    // Bad input in the spec is the caller's: InvalidArgument, as every other refusal below.
    const spec = await readBundleSpec(r.bundle).catch((err) => { throw asRpcError(err, `create ${r.id}`); });
    let role;
    try {
      role = taskRole(spec.annotations, r.id);
    } catch (err) {
      throw asRpcError(err, `create ${r.id}`);
    }
    const ownsPod = role.kind !== 'member';
    const mounted = await mountRootfs(r.bundle, r.rootfs);
    const stdio: StdioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal };
    const init = new ShimProcess('', stdio, spec.process);
    const task = new Task(r.id, r.bundle, init, ownsPod, mounted);
    this.#tasks.set(r.id, task);
    try {
      const translated = containerFromSpec(spec, containerIdOf(r.id), specRootPath(spec, r.bundle), (pid) => this.#containerOfPid(pid, r.id));
      const warnings = translated.warnings;
      const config = supportedFields(translated.config, CONTAINER_FIELDS, warnings);
      if (r.terminal !== spec.process.terminal) config.tty = r.terminal;
      const cacheKey = await snapshotCacheKey(r.rootfs);
      if (cacheKey) config.rootfsCacheKey = cacheKey;
      for (const w of warnings) ctx.log.warnOnce(w);
      // The containers of a CRI pod share its UTS namespace: its host name is theirs.
      if (ownsPod && typeof config.hostname === 'string') this.#podHostname = config.hostname;
      else if (!ownsPod && config.hostname === undefined && this.#podHostname) config.hostname = this.#podHostname;
      if (ownsPod) {
        if (this.#podUp) throw new RpcError(StatusCode.FailedPrecondition, `this shim's pod ${ctx.podId} exists already; task ${r.id} is not one of its containers`);
        const network = specNetwork(spec);
        await bringUpPod(podConfigFor(ctx.podId, spec, network, ctx.log), ctx.options);
        this.#podUp = true;
        if (role.kind === 'sandbox') await this.#startLoopback(network);
      } else if (!this.#podUp && !(await podIsRunning(ctx.podId, ctx.options))) {
        throw new RpcError(StatusCode.FailedPrecondition, `sandbox pod ${ctx.podId} of task ${r.id} is not running`);
      }
      init.io = await openStdio(stdio, `task ${r.id}`);
      const status = await createContainer(ctx.podId, config as Parameters<typeof createContainer>[1], ctx.options)
        .catch((err) => { throw asRpcError(err, `creating container ${r.id}`); });
      init.pid = status.pid ?? 0;
      init.proc = await attachContainer(ctx.podId, containerIdOf(r.id), ctx.options)
        .catch((err) => { throw asRpcError(err, `attaching to container ${r.id}`); });
      wireStdio(init);
      task.hostMounts = (config.mounts as Array<{ readOnly?: boolean }> | undefined) ?? [];
      if (task.hostMounts.length) {
        // Files that change on the host (CRI's hosts/resolv.conf, configmaps) reach the guest within 2 s.
        task.mountWatch = watchContainerMounts(ctx.podId, task.containerId, {
          ...ctx.options, intervalMs: 1000, onError: (err) => ctx.log.warnOnce(`refreshing the mounts of ${r.id}: ${err.message}`),
        });
      }
    } catch (err) {
      this.#tasks.delete(r.id);
      init.io?.close();
      await this.#undoCreate(task).catch((e) => ctx.log.warn(`undoing the create of ${r.id}: ${(e as Error).message}`));
      throw asRpcError(err, `create ${r.id}`);
    }
    ctx.compact?.();
    await ctx.events.publish('TaskCreate', {
      containerId: r.id, bundle: r.bundle, rootfs: r.rootfs, pid: init.pid, checkpoint: '',
      io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal },
    });
    return { pid: init.pid };
  }

  /**
   * The sandbox's loopback forwarder, once its pod is up. Without it the sandbox still runs; only
   * PortForward cannot reach the VM, which the shim log says once.
   */
  async #startLoopback(network: SpecNetwork): Promise<void> {
    if (network.kind !== 'path') return;
    const { ctx } = this;
    try {
      this.#loopback = await forwardNetnsLoopback(ctx.podId, {
        ...ctx.options,
        netns: network.path,
        onConnectionError: (err, port) => ctx.log.debug(`port-forward to guest port ${port}: ${err.message}`),
      });
      ctx.log.debug(`port-forward: 127.0.0.1 in ${network.path} is redirected to the VM (listener port ${this.#loopback.port})`);
    } catch (err) {
      ctx.log.warnOnce(`port-forward: ${(err as Error).message}; CRI PortForward (kubectl port-forward) will not reach the VM's containers`);
    }
  }

  /** Closes the loopback forwarder (its rule goes with it while the netns is there). */
  async #stopLoopback(): Promise<void> {
    const loopback = this.#loopback;
    this.#loopback = null;
    await loopback?.close().catch((err: Error) => this.ctx.log.warn(`port-forward: closing the forwarder in ${loopback.netns}: ${err.message}`));
  }

  /** At shutdown: what outlives the tasks in this process. */
  async close(): Promise<void> {
    await this.#stopLoopback();
  }

  async #undoCreate(task: Task): Promise<void> {
    const { ctx } = this;
    task.init.proc?.kill('SIGKILL').catch(() => {});
    task.mountWatch?.close();
    if (task.ownsPod) {
      await this.#stopLoopback();
      if (this.#podUp) await deletePod(ctx.podId, { ...ctx.options, force: true });
      this.#podUp = false;
    } else {
      await deleteContainer(ctx.podId, containerIdOf(task.id), { ...ctx.options, force: true }).catch(() => {});
    }
    if (task.rootfsMounted) await unmountRootfs(task.bundle);
  }

  async #start(id: string, execId: string): Promise<MessageInit<TaskMethods['Start'][1]>> {
    const task = this.#task(id);
    const p = this.#process(id, execId);
    if (p.state !== 'created') throw new RpcError(StatusCode.FailedPrecondition, `${execId ? `exec ${execId}` : `task ${id}`} is ${p.state}, not created`);
    const { ctx } = this;
    if (!execId) {
      await startContainer(ctx.podId, containerIdOf(id), ctx.options).catch((err) => { throw asRpcError(err, `starting ${id}`); });
      p.state = 'running';
      await ctx.events.publish('TaskStart', { containerId: id, pid: p.pid });
    } else {
      const spec = p.spec!;
      const fields = processFields(spec, `exec ${execId} process`, []);
      p.io = await openStdio(p.stdio, `exec ${execId}`);
      try {
        p.proc = await enterContainer(ctx.podId, containerIdOf(id), spec.args, {
          ...ctx.options,
          env: fields.env as Record<string, string>,
          cwd: spec.cwd,
          user: fields.user as string,
          tty: p.stdio.terminal,
          // The exec's own process fields; its seccomp filter is the container's (OCI puts it in linux).
          security: {
            capabilities: (fields.security as { capabilities: Record<string, string[]> }).capabilities,
            ...(spec.noNewPrivileges !== undefined ? { noNewPrivileges: spec.noNewPrivileges } : {}),
          },
          ...(fields.rlimits ? { rlimits: fields.rlimits as never } : {}),
          ...(fields.additionalGids ? { additionalGids: fields.additionalGids as number[] } : {}),
          ...(spec.consoleSize ? { rows: spec.consoleSize.height, cols: spec.consoleSize.width } : {}),
        });
      } catch (err) {
        p.io.close();
        throw asRpcError(err, `starting exec ${execId} in ${id}`);
      }
      p.pid = p.proc.pid;
      p.state = 'running';
      wireStdio(p);
      await ctx.events.publish('TaskExecStarted', { containerId: id, execId, pid: p.pid });
    }
    this.#watchExit(task, p);
    return { pid: p.pid };
  }

  /** Publishes TaskExit once the process ends — or its VM does (then every process exits 255). */
  #watchExit(task: Task, p: ShimProcess): void {
    p.proc!.wait().then((exit) => exitStatusOf(exit), (err) => {
      // The agent connection broke: the VM (or its agent) is gone, and the process with it.
      this.ctx.log.warn(`waiting for ${task.id}${p.execId ? ` exec ${p.execId}` : ''}: ${(err as Error).message}`);
      return VM_GONE_EXIT_STATUS;
    }).then(async (status) => {
      // Output still in flight must reach the FIFOs before containerd hears of the exit.
      await drained(p);
      if (p.exit) return;
      if (!p.execId) await this.#mountsOut(task, status);
      // A kernel OOM kill of the container is its own event, before the exit (as runc's shim).
      if (!p.execId && status !== VM_GONE_EXIT_STATUS) {
        const oom = await containerStatus(this.ctx.podId, task.containerId, this.ctx.options).then((s) => s.oomKilled, () => false);
        if (oom) await this.ctx.events.publish('TaskOOM', { containerId: task.id });
      }
      if (!p.finish(status)) return;
      await this.ctx.events.publish('TaskExit', {
        containerId: task.id, id: p.execId || task.id, pid: p.pid, exitStatus: status, exitedAt: timestampFromDate(p.exit!.at),
      });
    });
  }

  /**
   * When the init has gone: what the container wrote into its writable host mounts goes back to
   * the host (Kubernetes reads /dev/termination-log and emptyDirs there) before containerd hears
   * of the exit. Not when the VM died: its files died with it.
   */
  async #mountsOut(task: Task, status: number): Promise<void> {
    task.mountWatch?.close();
    task.mountWatch = null;
    if (status === VM_GONE_EXIT_STATUS || !task.hostMounts.some((m) => !m.readOnly)) return;
    await copyContainerMountsOut(this.ctx.podId, task.containerId, this.ctx.options)
      .catch((err) => this.ctx.log.warn(`copying the mounts of ${task.id} back to the host: ${(err as Error).message}`));
  }

  #addExec(id: string, execId: string, r: TaskMethods['Exec'][0]): void {
    const task = this.#task(id);
    if (!execId) throw new RpcError(StatusCode.InvalidArgument, 'exec_id: must not be empty');
    if (task.execs.has(execId)) throw new RpcError(StatusCode.AlreadyExists, `exec ${execId} exists already in task ${id}`);
    if (task.init.state !== 'running') throw new RpcError(StatusCode.FailedPrecondition, `task ${id} is ${task.init.state}, not running`);
    if (!r.spec?.value?.length) throw new RpcError(StatusCode.InvalidArgument, `exec ${execId}: spec: the process is missing`);
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(r.spec.value).toString('utf8'));
    } catch (err) {
      throw new RpcError(StatusCode.InvalidArgument, `exec ${execId}: spec: not JSON: ${(err as Error).message}`);
    }
    let spec;
    try {
      spec = parseProcess(raw, `exec ${execId} process`);
    } catch (err) {
      throw asRpcError(err, `exec ${execId}`);
    }
    task.execs.set(execId, new ShimProcess(execId, { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal }, spec));
    void this.ctx.events.publish('TaskExecAdded', { containerId: id, execId });
  }

  async #kill(id: string, execId: string, signal: number, all: boolean): Promise<void> {
    const p = this.#process(id, execId);
    if (p.state === 'stopped') throw new RpcError(StatusCode.NotFound, `${execId ? `exec ${execId}` : `task ${id}`}: process already finished`);
    if (p.state === 'created' && execId) {
      p.finish(128 + signal);
      return;
    }
    const { ctx } = this;
    try {
      if (!execId && (all || p.state === 'created')) await killContainer(ctx.podId, containerIdOf(id), signal, { ...ctx.options, all: true });
      else await p.proc!.kill(signal);
    } catch (err) {
      throw asRpcError(err, `kill ${id}${execId ? ` exec ${execId}` : ''}`);
    }
  }

  async #pause(id: string, pause: boolean): Promise<void> {
    const task = this.#task(id);
    if (task.init.state !== 'running') throw new RpcError(StatusCode.FailedPrecondition, `task ${id} is ${task.init.state}, not running`);
    await this.#extras.pause(task, pause);
    task.paused = pause;
    await this.ctx.events.publish(pause ? 'TaskPaused' : 'TaskResumed', { containerId: id });
  }

  async #delete(id: string, execId: string): Promise<MessageInit<TaskMethods['Delete'][1]>> {
    const task = this.#task(id);
    const p = this.#process(id, execId);
    if (p.state === 'running') throw new RpcError(StatusCode.FailedPrecondition, `${execId ? `exec ${execId}` : `task ${id}`} is running: kill it first`);
    if (execId) {
      task.execs.delete(execId);
      if (!p.exit) p.finish(0);
      return { pid: p.pid, exitStatus: p.exit!.status, exitedAt: timestampFromDate(p.exit!.at) };
    }
    const { ctx } = this;
    if (!p.exit) p.finish(137);
    task.mountWatch?.close();
    for (const exec of task.execs.values()) exec.io?.close();
    try {
      if (task.ownsPod) {
        await this.#stopLoopback();
        await stopPod(ctx.podId, { ...ctx.options, timeoutMs: 2000 }).catch(() => {});
        await deletePod(ctx.podId, { ...ctx.options, force: true });
        this.#podUp = false;
      } else {
        await deleteContainer(ctx.podId, containerIdOf(id), { ...ctx.options, force: true }).catch((err: { code?: string }) => {
          if (!/NOT_FOUND|NOT_RUNNING/.test(err.code ?? '')) throw err;
        });
      }
      if (task.rootfsMounted) await unmountRootfs(task.bundle);
    } catch (err) {
      throw asRpcError(err, `delete ${id}`);
    }
    this.#tasks.delete(id);
    const answer = { pid: p.pid, exitStatus: p.exit!.status, exitedAt: timestampFromDate(p.exit!.at) };
    await ctx.events.publish('TaskDelete', { containerId: id, id, ...answer });
    return answer;
  }
}

/** Container ids are the task's when they fit our pattern (CRI's 64 hex digits do). */
export function containerIdOf(taskId: string): string {
  return containerIdFor(taskId);
}

/**
 * Pipes the process's streams to and from its FIFOs. A FIFO whose reader went away (`ctr run -d`
 * exits at once) stops taking output: the rest is drained and dropped, so the process never
 * stalls on a full stream and its exit is still seen.
 */
function wireStdio(p: ShimProcess): void {
  const { proc, io } = p;
  if (!proc || !io) return;
  for (const [from, to] of [[proc.stdout, io.stdout], [proc.stderr, io.stderr]] as const) {
    if (!to) {
      from.resume();
      continue;
    }
    from.pipe(to);
    const drop = (): void => {
      from.unpipe(to);
      from.resume();
    };
    to.on('error', drop);
    to.on('close', drop);
  }
  proc.stdin.on('error', () => {});
  if (io.stdin) {
    io.stdin.pipe(proc.stdin);
    io.stdin.on('error', () => proc.stdin.end());
  }
}

/**
 * Resolves once the process's output has reached its FIFOs: its streams ended (they do when it
 * exits) and the FIFO ends finished writing — or after 2 s, so a stuck reader cannot hold the exit.
 */
function drained(p: ShimProcess): Promise<void> {
  const waits: Array<Promise<void>> = [];
  for (const [from, to] of [[p.proc?.stdout, p.io?.stdout], [p.proc?.stderr, p.io?.stderr]] as const) {
    if (to && !to.writableFinished) waits.push(settled(to, 'finish'));
    else if (from && !from.readableEnded) waits.push(settled(from, 'end'));
  }
  return Promise.race([Promise.all(waits).then(() => {}), new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
}

function settled(stream: NodeJS.EventEmitter, event: string): Promise<void> {
  return new Promise((resolve) => {
    stream.once(event, () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
  });
}
