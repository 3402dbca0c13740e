/**
 * The daemon's containers: each one's record (written before every step), its init as a process
 * (attached at create, so none of its output is missed), its exit, and the execs waiting for their
 * holder. Requests from the CLI and HELLOs from holders arrive here.
 */
import type { Socket } from 'node:net';
import { startContainer } from '../api/container.js';
import { enterContainer } from '../api/container-process.js';
import { killContainer } from '../api/container-signal.js';
import { copyContainerMountsOut } from '../api/container-mounts-out.js';
import { watchContainerMounts, type MountWatcher } from '../api/container-mounts.js';
import { containerProcesses, pauseContainer, resumeContainer, updateContainer } from '../api/container-ops.js';
import type { CallOptions } from '../api/context.js';
import type { PodProcess } from '../api/enter.js';
import { limitsFromResources } from '../oci/container-from-spec.js';
import type { OciSpec } from '../oci/spec.js';
import { makeContainer, planCreate, removeFromApi } from './container-create.js';
import { execOptions, execProcess, type ExecOverrides } from './exec-process.js';
import { encodeFrame, Frame } from './frames.js';
import { exitRecordOf, HolderLink, VM_GONE } from './holder-link.js';
import type { RuntimeLog } from './log.js';
import { listRecordIds, netnsPin, readRecord, removeRecord, writeRecord, type ContainerRecord, type ExitRecord } from './state-store.js';

export class RequestError extends Error {}

/**
 * An exec between its request and its holder's HELLO. The CLI registers it (`exec`), asks for its
 * outcome (`exec-wait`), then starts the holder: so the HELLO never arrives before the exec is known.
 */
interface PendingExec {
  given: { process?: unknown; overrides?: ExecOverrides };
  holderCame: boolean;
  /** The started process's guest pid, or why it did not start. */
  started: Promise<number>;
  settle(err: Error | null, pid?: number): void;
}

interface Live {
  record: ContainerRecord;
  spec?: OciSpec;
  init?: PodProcess;
  exit?: Promise<ExitRecord>;
  /**
   * Set once the init has exited: its holder may be gone and the engine's `delete` on its way while
   * the writable mounts are still copied back. Resolves once the record says stopped.
   */
  exitHandled?: Promise<void>;
  holder?: HolderLink;
  hostMounts: Array<{ readOnly?: boolean }>;
  /** Host bind mounts' changes copied in while the container lives (docker rewrites /etc/hosts). */
  mountWatch?: MountWatcher;
  execs: Map<string, PendingExec>;
  /** A create or delete is under way: other requests wait for nothing and are refused. */
  busy: boolean;
  /** The init's holder, accepted while the container was being created: linked once the init is attached. */
  waitingHolder?: { socket: Socket; hello: Hello; settle(link: HolderLink | null): void };
}

export interface Hello {
  id: string;
  exec: string | null;
  tty: boolean;
  rows: number;
  cols: number;
}

const EXEC_HOLDER_TIMEOUT_MS = 60_000;

export class DaemonContainers {
  readonly #live = new Map<string, Live>();

  constructor(private readonly root: string, private readonly options: CallOptions, private readonly log: RuntimeLog) {}

  /** After a daemon crash: containers whose relay died with it are stopped (their holders exited 255). */
  recover(): void {
    for (const id of listRecordIds(this.root)) {
      let record: ContainerRecord | null;
      try {
        record = readRecord(this.root, id);
      } catch (err) {
        this.log.warn((err as Error).message);
        continue;
      }
      if (!record) continue;
      if (record.status === 'created' || record.status === 'running' || record.status === 'paused') {
        record.status = 'stopped';
        record.exit = VM_GONE;
        writeRecord(this.root, record);
        this.log.warn(`container ${id}: its daemon had gone; marked stopped (exit 255)`);
      }
      this.#live.set(id, { record, hostMounts: [], execs: new Map(), busy: false });
    }
  }

  get count(): number {
    return this.#live.size;
  }

  #get(id: string): Live {
    const live = this.#live.get(id);
    if (!live) throw new RequestError(`container "${id}" does not exist`);
    if (live.busy) throw new RequestError(`container "${id}" is being created or deleted; try again`);
    return live;
  }

  #save(live: Live): void {
    writeRecord(this.root, live.record);
  }

  async handle(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = String(request.id ?? '');
    switch (request.op) {
      case 'create': return this.#create(id, String(request.bundle ?? ''));
      case 'make': return this.#make(id);
      case 'holder': return this.#holderPid(id, Number(request.pid), request.netns === true);
      case 'start': return this.#start(id);
      case 'kill': return this.#kill(id, Number(request.signal), request.all === true);
      case 'delete': return this.#delete(id, request.force === true);
      case 'exec': return this.#exec(id, String(request.execId ?? ''), { process: request.process, overrides: request.overrides as ExecOverrides | undefined });
      case 'exec-wait': return this.#execWait(id, String(request.execId ?? ''));
      case 'ps': {
        const { record } = this.#get(id);
        return { pids: await containerProcesses(record.pod, record.containerId, this.options) };
      }
      case 'pause': return this.#pause(id, true);
      case 'resume': return this.#pause(id, false);
      case 'update': return this.#update(id, request.resources);
      default: throw new RequestError(`unknown request ${JSON.stringify(request.op)}`);
    }
  }

  /**
   * Create's first step: the record only. The CLI then starts the holder (in the container's own
   * network namespace when the spec asks for a new one), runs the prestart hooks, and asks `make`.
   */
  async #create(id: string, bundle: string): Promise<Record<string, unknown>> {
    if (this.#live.has(id) || readRecord(this.root, id)) throw new RequestError(`container "${id}" exists already`);
    const planned = await planCreate(id, bundle);
    // Another create of the same id may have come in while the bundle was read.
    if (this.#live.has(id)) throw new RequestError(`container "${id}" exists already`);
    const live: Live = { record: planned.record, spec: planned.spec, hostMounts: [], execs: new Map(), busy: false };
    this.#live.set(id, live);
    this.#save(live);
    return {};
  }

  /** Create's second step, after the holder and the hooks: the pod (or the sandbox's), the container, its init. */
  async #make(id: string): Promise<Record<string, unknown>> {
    const live = this.#get(id);
    if (live.record.status !== 'creating' || !live.spec) throw new RequestError(`container "${id}" is ${live.record.status}, not being created`);
    live.busy = true;
    try {
      const planned = { spec: live.spec, record: live.record };
      const made = await makeContainer(planned, this.options, (pid) => this.#containerOfPid(pid, planned.record.pod), this.log);
      live.init = made.init;
      live.hostMounts = made.hostMounts;
      if (made.hostMounts.length) {
        // As the shim: files the engine changes on the host (hosts, resolv.conf) reach the guest within 2 s.
        live.mountWatch = watchContainerMounts(live.record.pod, live.record.containerId, {
          ...this.options, intervalMs: 1000, onError: (err) => this.log.warnOnce(`refreshing the mounts of ${id}: ${err.message}`),
        });
      }
      live.exit = made.init.wait().then(exitRecordOf, (err: Error) => {
        this.log.warn(`container ${id}: waiting for its init: ${err.message}`);
        return VM_GONE;
      });
      void live.exit.then((exit) => {
        live.exitHandled = this.#exited(live, exit);
      });
      live.record.status = 'created';
      this.#save(live);
    } catch (err) {
      this.#dropWaitingHolder(live, `creating container "${id}" failed: ${(err as Error).message}`);
      this.#live.delete(id);
      await removeRecord(this.root, id);
      throw err;
    } finally {
      live.busy = false;
    }
    const waiting = live.waitingHolder;
    if (waiting) {
      live.waitingHolder = undefined;
      if (waiting.hello.tty && waiting.hello.rows > 0 && waiting.hello.cols > 0) await live.init.resize(waiting.hello.rows, waiting.hello.cols).catch(() => {});
      live.holder = new HolderLink(waiting.socket, live.init, live.exit, { onWarning: (m: string) => this.log.warn(`container ${id}: ${m}`) });
      waiting.settle(live.holder);
    }
    return {};
  }

  #dropWaitingHolder(live: Live, message: string): void {
    const waiting = live.waitingHolder;
    if (!waiting) return;
    live.waitingHolder = undefined;
    waiting.socket.end(encodeFrame(Frame.ERROR, message));
    waiting.settle(null);
  }

  async #exited(live: Live, exit: ExitRecord): Promise<void> {
    await live.mountWatch?.close();
    if (exit !== VM_GONE && live.hostMounts.some((m) => !m.readOnly)) {
      await copyContainerMountsOut(live.record.pod, live.record.containerId, this.options)
        .catch((err: Error) => this.log.warn(`copying the mounts of ${live.record.id} back to the host: ${err.message}`));
    }
    if (!this.#live.has(live.record.id) || live.record.status === 'deleting') return;
    live.record.status = 'stopped';
    live.record.exit = exit;
    this.#save(live);
  }

  #containerOfPid(pid: number, pod: string): string | undefined {
    for (const live of this.#live.values()) {
      if (pid > 0 && live.record.holderPid === pid && live.record.pod === pod) return live.record.containerId;
    }
    return undefined;
  }

  #holderPid(id: string, pid: number, ownNetns: boolean): Record<string, unknown> {
    const live = this.#get(id);
    if (!Number.isInteger(pid) || pid <= 0) throw new RequestError(`holder: pid ${pid} is not a process id`);
    live.record.holderPid = pid;
    if (ownNetns) live.record.netns = netnsPin(this.root, id);
    this.#save(live);
    return {};
  }

  async #start(id: string): Promise<Record<string, unknown>> {
    const live = this.#get(id);
    if (live.record.status !== 'created') throw new RequestError(`cannot start container "${id}": it is ${live.record.status}, not created`);
    await startContainer(live.record.pod, live.record.containerId, this.options);
    // The init may have exited already (its exit recorded it stopped): keep that.
    if (live.record.status === 'created') {
      live.record.status = 'running';
      this.#save(live);
    }
    return {};
  }

  async #kill(id: string, signal: number, all: boolean): Promise<Record<string, unknown>> {
    const live = this.#get(id);
    const { status } = live.record;
    if (status !== 'created' && status !== 'running' && status !== 'paused') throw new RequestError(`container "${id}" is not running (${status})`);
    if (all || status === 'created' || !live.init) await killContainer(live.record.pod, live.record.containerId, signal, { ...this.options, all: true });
    else await live.init.kill(signal);
    return {};
  }

  async #delete(id: string, force: boolean): Promise<Record<string, unknown>> {
    const live = this.#live.get(id);
    if (!live) {
      const record = readRecord(this.root, id);
      if (!record) throw new RequestError(`container "${id}" does not exist`);
      // A record this daemon does not hold (written by a crashed create): undo what it says.
      await removeFromApi(record, this.options);
      await removeRecord(this.root, id);
      return {};
    }
    // Not even with --force: the create (or delete) under way finishes or undoes itself first.
    if (live.busy) throw new RequestError(`container "${id}" is being created or deleted; try again`);
    // The holder exits as soon as the init's EXIT is sent: the record catches up here first.
    if (live.exitHandled) {
      await live.exitHandled;
      if (live.busy || !this.#live.has(id)) throw new RequestError(`container "${id}" is being deleted; try again`);
    }
    const { status } = live.record;
    if ((status === 'running' || status === 'paused') && !force) {
      throw new RequestError(`cannot delete container "${id}" that is not stopped: ${status} (use --force)`);
    }
    live.busy = true;
    try {
      if (live.init && status !== 'stopped') {
        await killContainer(live.record.pod, live.record.containerId, 'SIGKILL', { ...this.options, all: true }).catch(() => {});
        await Promise.race([live.exit, new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
      }
      live.record.status = 'deleting';
      this.#save(live);
      await live.mountWatch?.close();
      this.#dropWaitingHolder(live, `container "${id}" was deleted`);
      for (const exec of live.execs.values()) exec.settle(new RequestError(`container "${id}" was deleted`));
      await removeFromApi(live.record, this.options);
      await removeRecord(this.root, id);
      this.#live.delete(id);
    } finally {
      live.busy = false;
    }
    return {};
  }

  #exec(id: string, execId: string, given: PendingExec['given']): Record<string, unknown> {
    const live = this.#get(id);
    if (live.record.status !== 'running') throw new RequestError(`cannot exec in container "${id}": it is ${live.record.status}, not running`);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(execId) || live.execs.has(execId)) throw new RequestError(`exec id ${JSON.stringify(execId)} is not valid or in use`);
    if (!live.spec) throw new RequestError(`container "${id}" was not created by this daemon`);
    // Checked now, so a bad process is the CLI's error before any holder starts.
    execProcess(live.spec.process, given);
    let settle!: PendingExec['settle'];
    const started = new Promise<number>((resolve, reject) => {
      settle = (err, pid) => (err ? reject(err) : resolve(pid!));
    });
    started.catch(() => {});
    const pending: PendingExec = { given, holderCame: false, started, settle };
    live.execs.set(execId, pending);
    const timer = setTimeout(() => {
      if (!pending.holderCame) settle(new RequestError(`exec ${execId}: no holder came within ${EXEC_HOLDER_TIMEOUT_MS / 1000} s`));
      // Forgotten either way once its CLI had time to ask.
      setTimeout(() => live.execs.delete(execId), EXEC_HOLDER_TIMEOUT_MS).unref();
    }, EXEC_HOLDER_TIMEOUT_MS);
    timer.unref();
    return {};
  }

  async #execWait(id: string, execId: string): Promise<Record<string, unknown>> {
    const pending = this.#get(id).execs.get(execId);
    if (!pending) throw new RequestError(`exec ${execId} of container "${id}" is not known`);
    try {
      return { pid: await pending.started };
    } finally {
      this.#live.get(id)?.execs.delete(execId);
    }
  }

  async #pause(id: string, pause: boolean): Promise<Record<string, unknown>> {
    const live = this.#get(id);
    const want = pause ? 'running' : 'paused';
    if (live.record.status !== want) throw new RequestError(`cannot ${pause ? 'pause' : 'resume'} container "${id}": it is ${live.record.status}, not ${want}`);
    await (pause ? pauseContainer : resumeContainer)(live.record.pod, live.record.containerId, this.options);
    live.record.status = pause ? 'paused' : 'running';
    this.#save(live);
    return {};
  }

  async #update(id: string, resources: unknown): Promise<Record<string, unknown>> {
    const live = this.#get(id);
    if (typeof resources !== 'object' || resources === null) throw new RequestError('update: resources: expected a JSON object');
    const warnings: string[] = [];
    const limits = limitsFromResources(resources as never, 'update resources', warnings);
    for (const w of warnings) this.log.warnOnce(w);
    if (Object.keys(limits).length) await updateContainer(live.record.pod, live.record.containerId, { limits }, this.options);
    return { warnings };
  }

  /** A holder's HELLO: ACK and relay, or ERROR (the holder prints it and exits 255). */
  async attachHolder(socket: Socket, hello: Hello): Promise<HolderLink | null> {
    const refuse = (message: string): null => {
      socket.end(encodeFrame(Frame.ERROR, message));
      return null;
    };
    const live = this.#live.get(hello.id);
    if (!live) return refuse(`container "${hello.id}" does not exist in this daemon`);
    const events = { onWarning: (m: string) => this.log.warn(`container ${hello.id}: ${m}`) };
    if (!hello.exec && live.record.status === 'creating' && !live.init) {
      // The holder comes before the pod (the hooks run in between): accepted now, linked by `make`.
      if (live.waitingHolder || live.holder) return refuse(`container "${hello.id}" has a holder already`);
      socket.write(encodeFrame(Frame.ACK));
      return new Promise((settle) => {
        live.waitingHolder = { socket, hello, settle };
        socket.once('close', () => {
          if (live.waitingHolder?.socket === socket) this.#dropWaitingHolder(live, 'the holder left');
        });
      });
    }
    if (live.busy) return refuse(`container "${hello.id}" is being created or deleted`);
    if (!hello.exec) {
      if (!live.init || !live.exit || live.record.status === 'stopped') return refuse(`container "${hello.id}" is ${live.record.status}`);
      if (live.holder) return refuse(`container "${hello.id}" has a holder already`);
      if (hello.tty && hello.rows > 0 && hello.cols > 0) await live.init.resize(hello.rows, hello.cols).catch(() => {});
      socket.write(encodeFrame(Frame.ACK));
      live.holder = new HolderLink(socket, live.init, live.exit, events);
      return live.holder;
    }
    const pending = live.execs.get(hello.exec);
    if (!pending || pending.holderCame) return refuse(`exec ${hello.exec} of container "${hello.id}" is not waiting for a holder`);
    pending.holderCame = true;
    let proc: PodProcess;
    try {
      const oci = execProcess(live.spec!.process, pending.given);
      const tty = oci.terminal || hello.tty;
      proc = await enterContainer(live.record.pod, live.record.containerId, oci.args, { ...this.options, ...execOptions(oci, tty, hello.rows, hello.cols) });
    } catch (err) {
      pending.settle(err as Error);
      return refuse(`exec in container "${hello.id}": ${(err as Error).message}`);
    }
    socket.write(encodeFrame(Frame.ACK));
    const exit = proc.wait().then(exitRecordOf, () => VM_GONE);
    pending.settle(null, proc.pid);
    return new HolderLink(socket, proc, exit, events);
  }
}
