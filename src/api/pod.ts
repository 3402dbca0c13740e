// Pod lifecycle: create (VM prepared, not running), start, stop, delete. Every call works from a
// fresh process: it reads the pod's state from disk under the pod's lock and writes it back.
import { readFile } from 'node:fs/promises';
import { VcError } from '../errors.js';
import { resolveKernel } from '../guest/kernel.js';
import { buildInitrd } from '../guest/initrd.js';
import { guestCmdline } from '../hypervisor/cmdline.js';
import { checkDiskSlots, checkPodLimits } from '../hypervisor/limits.js';
import { resolveHypervisorKind } from '../hypervisor/select.js';
import { endpointSockets, type Hypervisor, type VmSpec } from '../hypervisor/types.js';
import { nativeExecutable } from '../native.js';
import { withLock } from '../store/lock.js';
import { hostnameFromId } from '../model/hostname.js';
import type { PodRecord, VmmRecord } from '../model/records.js';
import type { PodStore } from '../store/pod-store.js';
import { connectAgent } from './agent-link.js';
import { parsePodConfig, type PodConfigInput } from '../model/pod-config.js';
import { hypervisorOf, storeFor, type CallOptions } from './context.js';
import { noticeVmmExit, statusOf, type PodStatus } from './pod-status.js';
import { nextState } from './transitions.js';
import { ContainerStore } from '../store/container-store.js';
import { createInGuest, prepareImage, startInGuest } from './container.js';
import { markContainersGone } from './container-status.js';
import { runningPod, withAgent } from './pod-session.js';

const UNIX_SOCKET_PATH_MAX = 107;

export async function createPod(input: PodConfigInput, options: CallOptions = {}): Promise<PodStatus> {
  const config = parsePodConfig(input);
  const store = storeFor(options);
  const kind = resolveHypervisorKind(config.hypervisor);
  checkPodLimits(config, hypervisorOf(options, kind));
  const paths = store.paths(config.id);
  const sockets = [paths.qmpSocket, paths.controlSocket, ...endpointSockets(hypervisorOf(options, kind).agentEndpoint(paths))];
  const longest = sockets.reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
  if (Buffer.byteLength(longest) > UNIX_SOCKET_PATH_MAX) {
    throw new VcError('INVALID_CONFIG', `root: ${JSON.stringify(store.root)} is too long: socket path ${longest} exceeds ${UNIX_SOCKET_PATH_MAX} bytes`);
  }
  await hypervisorOf(options, kind).check();

  // The slow, cached steps come before anything is written for the pod, so a failure leaves nothing.
  const kernel = await resolveKernel({
    kernelPath: config.kernel?.path,
    modulesDir: config.kernel?.modulesDir,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const initrd = await buildInitrd({ agentPath: nativeExecutable('vc-agent'), kernel, onProgress: options.onProgress });
  // Images of the listed containers are built now, so a bad one fails the create, not the start.
  const digests = new Set<string>();
  for (const container of config.containers) digests.add((await prepareImage(container, options)).digest);
  checkDiskSlots(config.id, digests.size, hypervisorOf(options, kind));

  const now = new Date().toISOString();
  const record: PodRecord = {
    version: 1,
    id: config.id,
    config,
    hypervisor: kind,
    state: 'ready',
    boot: { kernelPath: kernel.kernelPath, kernelRelease: kernel.release, initrdPath: initrd.path, initrdDigest: initrd.digest },
    createdAt: now,
    updatedAt: now,
  };
  await store.create(record);
  return statusOf(record, store);
}

export interface StartOptions extends CallOptions {
  /** How long to wait for the guest agent after the VMM starts (TCG boots take seconds). */
  bootTimeoutMs?: number;
}

export async function startPod(id: string, options: StartOptions = {}): Promise<PodStatus> {
  const store = storeFor(options);
  return withLock(store.paths(id).lock, `pod ${id}`, options, async () => {
    const record = await store.read(id);
    const target = nextState(id, record.state, 'start');
    const hypervisor = hypervisorOf(options, record.hypervisor);
    const spec = vmSpec(store, record);
    options.onProgress?.(`booting pod ${id} (${record.hypervisor})`);
    const vmm = await hypervisor.start(spec, { signal: options.signal });
    try {
      await waitForAgent(hypervisor, spec, vmm, options);
    } catch (err) {
      await hypervisor.stop(vmm, spec.paths, { timeoutMs: 1000 }).catch(() => {});
      await hypervisor.cleanup(spec.paths, vmm);
      throw err;
    }
    const previous = structuredClone(record);
    record.state = target ?? record.state;
    record.vmm = vmm;
    record.disks = {};
    delete record.stoppedAt;
    delete record.stopReason;
    await store.write(record);
    try {
      await startListedContainers(store, record, options);
    } catch (err) {
      // The pod starts whole or not at all: its VM goes, and it returns to where it was.
      await hypervisor.stop(vmm, spec.paths, { timeoutMs: 1000 }).catch(() => {});
      await hypervisor.cleanup(spec.paths, vmm);
      for (const c of record.config.containers) await new ContainerStore(store).remove(id, c.id);
      await store.write(previous);
      throw err;
    }
    return statusOf(record, store, await hypervisor.vmState(vmm, spec.paths));
  });
}

/** Creates and starts the containers the pod config lists, in order, in the fresh VM. */
async function startListedContainers(store: PodStore, record: PodRecord, options: StartOptions): Promise<void> {
  if (record.config.containers.length === 0) return;
  const pod = await runningPod(store, record.id, options);
  const containers = new ContainerStore(store);
  for (const config of record.config.containers) {
    options.onProgress?.(`starting container ${config.id}`);
    await containers.remove(record.id, config.id); // a record from an earlier run of the pod
    const image = await prepareImage(config, options);
    await createInGuest(store, pod, config, image, options);
    await withAgent(pod, options.signal, (agent) => startInGuest(store, agent, record.id, config.id));
  }
}

export interface StopOptions extends CallOptions {
  /** How long the guest gets to power off after the agent's shutdown before the VMM is ended. */
  timeoutMs?: number;
}

export async function stopPod(id: string, options: StopOptions = {}): Promise<PodStatus> {
  const store = storeFor(options);
  return withLock(store.paths(id).lock, `pod ${id}`, options, async () => {
    let record = await store.read(id);
    record = await noticeVmmExit(store, record, options);
    if (record.state === 'stopped' && record.stopReason && record.stopReason !== 'requested') {
      return statusOf(record, store); // the VMM already went away; nothing is left to stop
    }
    const target = nextState(id, record.state, 'stop');
    const hypervisor = hypervisorOf(options, record.hypervisor);
    const paths = store.paths(id);
    if (record.vmm) {
      if (record.state === 'running') await askGuestToPowerOff(hypervisor, paths, record.vmm, options);
      await hypervisor.stop(record.vmm, paths, { timeoutMs: options.timeoutMs ?? 3000 });
    }
    await hypervisor.cleanup(paths, record.vmm);
    await markContainersGone(store, id);
    record.state = target ?? record.state;
    delete record.disks;
    record.stoppedAt = new Date().toISOString();
    record.stopReason = 'requested';
    await store.write(record);
    return statusOf(record, store);
  });
}

/** Freezes the pod's VM: no guest code runs, memory and devices stay as they are. */
export async function pausePod(id: string, options: CallOptions = {}): Promise<PodStatus> {
  return changeRunState(id, 'pause', options);
}

export async function resumePod(id: string, options: CallOptions = {}): Promise<PodStatus> {
  return changeRunState(id, 'resume', options);
}

async function changeRunState(id: string, event: 'pause' | 'resume', options: CallOptions): Promise<PodStatus> {
  const store = storeFor(options);
  return withLock(store.paths(id).lock, `pod ${id}`, options, async () => {
    const record = await noticeVmmExit(store, await store.read(id), options);
    const target = nextState(id, record.state, event);
    const hypervisor = hypervisorOf(options, record.hypervisor);
    const paths = store.paths(id);
    if (!record.vmm) throw new VcError('STATE_CORRUPT', `pod ${id} is ${record.state} but has no VMM record`);
    await (event === 'pause' ? hypervisor.pause(record.vmm, paths) : hypervisor.resume(record.vmm, paths));
    record.state = target ?? record.state;
    await store.write(record);
    return statusOf(record, store, await hypervisor.vmState(record.vmm, paths));
  });
}

export async function deletePod(id: string, options: CallOptions = {}): Promise<void> {
  const store = storeFor(options);
  await withLock(store.paths(id).lock, `pod ${id}`, options, async () => {
    const record = await noticeVmmExit(store, await store.read(id), options);
    nextState(id, record.state, 'delete');
    await hypervisorOf(options, record.hypervisor).cleanup(store.paths(id), record.vmm);
    await store.remove(id);
  });
}

function vmSpec(store: PodStore, record: PodRecord): VmSpec {
  const hostname = record.config.hostname ?? hostnameFromId(record.id);
  return {
    id: record.id,
    paths: store.paths(record.id),
    vcpus: record.config.vcpus,
    memoryMiB: record.config.memoryMiB,
    kernelPath: record.boot.kernelPath,
    initrdPath: record.boot.initrdPath,
    kernelCmdline: guestCmdline(hostname),
  };
}

async function waitForAgent(hypervisor: Hypervisor, spec: VmSpec, vmm: PodRecord['vmm'] & {}, options: StartOptions): Promise<void> {
  const timeoutMs = options.bootTimeoutMs ?? 120_000;
  const vmmGone = new AbortController();
  const watch = setInterval(() => {
    void hypervisor.isRunning(vmm, spec.paths).then((alive) => {
      if (!alive) vmmGone.abort(new Error(`the ${hypervisor.kind} process exited during boot`));
    });
  }, 250);
  const signal = options.signal ? AbortSignal.any([options.signal, vmmGone.signal]) : vmmGone.signal;
  try {
    const agent = await connectWhenListening(hypervisor, spec, vmm, timeoutMs, signal);
    agent.close();
    options.onProgress?.(`pod ${spec.id} is ready`);
  } catch (err) {
    const reason = vmmGone.signal.aborted ? (vmmGone.signal.reason as Error).message : (err as Error).message;
    throw new VcError('AGENT_UNREACHABLE', `pod ${spec.id}: the guest agent did not answer: ${reason}${await consoleTail(spec.paths.console)}`, { cause: err });
  } finally {
    clearInterval(watch);
  }
}

/**
 * QEMU's virtio-serial socket accepts at once and the hello waits for the guest; a hybrid vsock
 * connection is refused (closed) until the agent listens, so a refusal during boot means "again".
 */
async function connectWhenListening(hypervisor: Hypervisor, spec: VmSpec, vmm: VmmRecord, timeoutMs: number, signal: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await connectAgent(hypervisor.agentEndpoint(spec.paths, vmm), { timeoutMs: Math.max(1, deadline - Date.now()), signal });
    } catch (err) {
      const refused = (err as { code?: string }).code === 'AGENT_CONNECT_FAILED';
      if (!refused || signal.aborted || Date.now() + RECONNECT_DELAY_MS >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
    }
  }
}

const RECONNECT_DELAY_MS = 25;

async function askGuestToPowerOff(hypervisor: Hypervisor, paths: ReturnType<PodStore['paths']>, vmm: VmmRecord, options: StopOptions): Promise<void> {
  try {
    const agent = await connectAgent(hypervisor.agentEndpoint(paths, vmm), { timeoutMs: 2000, signal: options.signal });
    try {
      await agent.shutdown();
    } finally {
      agent.close();
    }
  } catch {
    // Best effort: a guest that does not answer is ended by the hypervisor.
  }
}

async function consoleTail(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  if (!text) return '';
  const lines = text.trimEnd().split('\n').slice(-15);
  return `\nlast console lines (${path}):\n  ${lines.join('\n  ')}`;
}
