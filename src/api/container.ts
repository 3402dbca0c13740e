// Containers in a running pod: created by the guest agent from a read-only image disk plus a
// writable overlay in the guest, with their state mirrored on disk so every call works from a
// fresh process.
import type { AgentClient } from '../agent/index.js';
import { VcError } from '../errors.js';
import { parseImageRef, resolveImage, type ImageSource, type PreparedImage } from '../guest/image/index.js';
import { CrashPoints } from '../crash-points.js';
import { selfIdentity } from '../host/process.js';
import { RECORD_VERSION, type ContainerRecord } from '../model/records.js';
import { isContainerStep } from '../model/states.js';
import { ContainerStore } from '../store/container-store.js';
import type { PodStore } from '../store/pod-store.js';
import { parseContainerConfig, type ContainerConfig, type ContainerConfigInput } from '../model/container-config.js';
import { agentLimits, containerSpec, imageSerial } from './container-spec.js';
import { agentConfinement } from '../oci/confinement.js';
import { storeFor, type CallOptions } from './context.js';
import { asRunningPod, withAgent, type RunningPod } from './pod-session.js';
import { settledPodOrGone, withPodLock } from './recover.js';
import { containerStepState, nextContainerState } from './transitions.js';
import { containerStatusOf, refreshFromAgent, type ContainerStatus } from './container-status.js';
import { bindsOf, copyMountsIn, planMounts } from './container-files.js';
import { manifestOf } from './mount-diff.js';
import { writeManifest } from '../store/mount-manifest.js';

export function imageSourceOf(config: ContainerConfig): ImageSource {
  if (config.rootfs) return { kind: 'dir', path: config.rootfs, ...(config.rootfsCacheKey ? { cacheKey: config.rootfsCacheKey } : {}) };
  if (config.image) return parseImageRef(config.image);
  return { kind: 'default' };
}

/** Builds (or finds in the cache) the container's image; the slow part, done before any lock. */
export function prepareImage(config: ContainerConfig, options: CallOptions): Promise<PreparedImage> {
  return resolveImage(imageSourceOf(config), { onProgress: options.onProgress, signal: options.signal });
}

export async function createContainer(podId: string, input: ContainerConfigInput, options: CallOptions = {}): Promise<ContainerStatus> {
  const config = parseContainerConfig(input);
  const image = await prepareImage(config, options);
  const store = storeFor(options);
  return withPodLock(store, podId, options, async () => {
    const pod = await lockedRunningPod(store, podId, options);
    const record = await createInGuest(store, pod, config, image, options, new CrashPoints('createContainer'));
    return containerStatusOf(record);
  });
}

/**
 * With the pod lock held: the pod, settled (api/recover.ts), if it runs, with any container step
 * whose caller died settled too.
 */
export async function lockedRunningPod(store: PodStore, podId: string, options: CallOptions): Promise<RunningPod> {
  const pod = await asRunningPod(store, await settledPodOrGone(store, podId, options), options);
  const containers = new ContainerStore(store);
  for (const id of await containers.ids(podId)) {
    const record = await containers.read(podId, id).catch(() => undefined);
    if (record && isContainerStep(record.state)) await settleContainer(store, pod, record, options);
  }
  return pod;
}

/**
 * Finishes or undoes a container step whose caller died: a create is undone (the guest's
 * container, the disk attachment and the record go); a start is settled by what the agent says.
 */
async function settleContainer(store: PodStore, pod: RunningPod, record: ContainerRecord, options: CallOptions): Promise<void> {
  const containers = new ContainerStore(store);
  options.onProgress?.(`container ${record.id}: settling a ${record.state} step interrupted by process ${record.step?.by.pid ?? '?'}`);
  if (record.state === 'creating') {
    await undoCreate(store, pod, record, options);
    return;
  }
  await withAgent(pod, options.signal, (agent) => refreshFromAgent(agent, containers, record));
}

async function undoCreate(store: PodStore, pod: RunningPod, record: ContainerRecord, options: CallOptions): Promise<void> {
  await withAgent(pod, options.signal, async (agent) => {
    await agent.request('signal_container', { id: record.id, signal: 9, all: true }).catch(() => {});
    await agent.request('delete_container', { id: record.id }).catch((err: { code?: string }) => {
      if (err.code !== 'NOT_FOUND') throw err; // never created in the guest
    });
  });
  const serial = record.image.serial;
  if (pod.record.disks?.[serial]) {
    await releaseDisk(store, pod, serial, record.id);
  } else {
    // Not in the pod record: never attached, or attached by a call that died before recording
    // it (useDisk). No other container can use a disk the record does not list, so it goes.
    await pod.hypervisor.detachDisk(pod.record.vmm, pod.paths, serial).catch(() => {});
  }
  await new ContainerStore(store).remove(pod.record.id, record.id);
}

/**
 * The containers whose namespaces `config` joins exist in the pod and run as far as their records
 * say (the agent checks again against the guest: one may have exited since).
 */
async function checkJoinable(containers: ContainerStore, podId: string, config: ContainerConfig): Promise<void> {
  for (const [ns, target] of Object.entries(config.joinNamespaces ?? {})) {
    if (target === undefined) continue;
    const field = `container ${config.id} in pod ${podId}: joinNamespaces.${ns}`;
    const record = await containers.read(podId, target).catch((err: { code?: string }) => {
      if (err.code === 'CONTAINER_NOT_FOUND') throw new VcError('INVALID_CONFIG', `${field}: no container ${JSON.stringify(target)} in the pod`);
      throw err;
    });
    if (record.state !== 'running' && record.state !== 'paused') {
      throw new VcError('INVALID_CONFIG', `${field}: container ${JSON.stringify(target)} is ${record.state}, not running`);
    }
  }
}

/**
 * Call with the pod lock held. Records the container as `creating` (with its image disk) before
 * anything is made, attaches the disk if needed, has the agent create it, then records `created`.
 */
export async function createInGuest(
  store: PodStore, pod: RunningPod, config: ContainerConfig, image: PreparedImage, options: CallOptions, steps?: CrashPoints,
): Promise<ContainerRecord> {
  const containers = new ContainerStore(store);
  const podId = pod.record.id;
  if (await containers.exists(podId, config.id)) {
    throw new VcError('CONTAINER_EXISTS', `container ${config.id} already exists in pod ${podId}`);
  }
  await checkJoinable(containers, podId, config);
  const spec = containerSpec(podId, config, image.config);
  // Compiled before anything is recorded: a bad seccomp profile is an INVALID_CONFIG, not an undo.
  const confinement = agentConfinement(config);
  // Walked before anything is made: a source that cannot be copied leaves nothing to undo.
  const mounts = await planMounts(config.mounts ?? []);
  const serial = imageSerial(image.digest);
  const record: ContainerRecord = {
    version: RECORD_VERSION, id: config.id, podId, config, spec, state: 'creating',
    step: { by: await selfIdentity(), at: new Date().toISOString() },
    image: { digest: image.digest, diskPath: image.diskPath, serial },
    createdAt: new Date().toISOString(),
  };
  await containers.write(record);
  steps?.reach('creating-recorded');
  try {
    await useDisk(store, pod, serial, image.diskPath, config.id);
    steps?.reach('disk-attached');
    const created = await withAgent(pod, options.signal, async (agent) => {
      const init = await agent.startProcess('create_container', {
        id: config.id,
        image: { serial, fstype: 'erofs' },
        argv: spec.argv, env: spec.env, cwd: spec.cwd, user: spec.user, hostname: spec.hostname,
        tty: config.tty,
        ...(config.tty && process.stdout.rows ? { rows: process.stdout.rows, cols: process.stdout.columns } : {}),
        limits: agentLimits(config.limits),
        ...confinement,
        ...(mounts.length > 0 ? { binds: bindsOf(mounts) } : {}),
        ...(config.joinNamespaces ? { joinNamespaces: config.joinNamespaces } : {}),
      }, config.tty);
      await copyMountsIn(agent, config.id, mounts, { signal: options.signal });
      return { process: init.id, pid: init.pid };
    });
    steps?.reach('created-in-guest');
    // What the guest now has, for refreshContainerMounts to compare the sources against.
    if (mounts.length > 0) await writeManifest(store, podId, config.id, manifestOf(mounts));
    record.state = 'created';
    record.initProcess = created.process;
    record.pid = created.pid;
    delete record.step;
    await containers.write(record);
    steps?.reach('created-recorded');
    return record;
  } catch (err) {
    // The undo runs to its end even when the caller's signal aborted the create: with that signal
    // it could not reach the agent and would leave the `creating` record and the disk behind.
    await undoCreate(store, pod, record, { ...options, signal: undefined }).catch(() => {});
    throw err;
  }
}

export async function startContainer(podId: string, id: string, options: CallOptions = {}): Promise<ContainerStatus> {
  const store = storeFor(options);
  return withPodLock(store, podId, options, async () => {
    const pod = await lockedRunningPod(store, podId, options);
    const record = await withAgent(pod, options.signal, (agent) => startInGuest(store, agent, podId, id));
    return containerStatusOf(record);
  });
}

/** Call with the pod lock held. `starting` is recorded first: a caller that dies leaves it for the agent to settle. */
export async function startInGuest(store: PodStore, agent: AgentClient, podId: string, id: string): Promise<ContainerRecord> {
  const containers = new ContainerStore(store);
  const record = await containers.read(podId, id);
  const target = nextContainerState(podId, id, record.state, 'start') ?? record.state;
  record.state = containerStepState(podId, id, record.state, 'start') ?? record.state;
  record.step = { by: await selfIdentity(), at: new Date().toISOString() };
  await containers.write(record);
  try {
    await agent.request('start_container', { id });
  } catch (err) {
    // A program that cannot run leaves the container stopped (exit 127), as the agent reports.
    await refreshFromAgent(agent, containers, record).catch(() => {});
    throw err;
  }
  record.state = target;
  delete record.step;
  record.startedAt = new Date().toISOString();
  await containers.write(record);
  return record;
}

export interface StopContainerOptions extends CallOptions {
  /** The first signal; default SIGTERM. (`signal` is the AbortSignal, as in every call.) */
  stopSignal?: NodeJS.Signals;
  /** How long the container gets after the first signal before SIGKILL; default 10 s. */
  timeoutMs?: number;
}

export async function stopContainer(podId: string, id: string, options: StopContainerOptions = {}): Promise<ContainerStatus> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  return withPodLock(store, podId, options, async () => {
    const pod = await lockedRunningPod(store, podId, options);
    return withAgent(pod, options.signal, async (agent) => {
      let record = await refreshFromAgent(agent, containers, await containers.read(podId, id));
      if (record.state === 'stopped') return containerStatusOf(record);
      const signals = (await import('node:os')).constants.signals as Record<string, number>;
      const first = signals[options.stopSignal ?? 'SIGTERM'];
      if (first === undefined) throw new VcError('INVALID_CONFIG', `stopSignal: unknown signal ${JSON.stringify(options.stopSignal)}`);
      if (record.state === 'running' || record.state === 'paused') {
        await agent.request('signal_container', { id, signal: first });
        // A frozen process acts on the signal only once thawed (SIGKILL excepted).
        if (record.state === 'paused') await agent.request('resume_container', { id });
        const exited = await agent.request('wait_container', { id }, { timeoutMs: options.timeoutMs ?? 10_000 }).then(() => true, (err: { code?: string }) => {
          if (err.code === 'AGENT_TIMEOUT') return false;
          throw err;
        });
        if (!exited) {
          await agent.request('signal_container', { id, signal: signals.SIGKILL!, all: true });
          await agent.request('wait_container', { id }, { timeoutMs: 10_000 });
        }
      }
      record = await refreshFromAgent(agent, containers, record);
      return containerStatusOf(record);
    });
  });
}

export interface DeleteContainerOptions extends CallOptions {
  /** Kill a running container (SIGKILL to all its processes) instead of refusing. */
  force?: boolean;
}

export async function deleteContainer(podId: string, id: string, options: DeleteContainerOptions = {}): Promise<void> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  await withPodLock(store, podId, options, async () => {
    const podRecord = await settledPodOrGone(store, podId, options);
    let record = await containers.read(podId, id);
    if (podRecord.state !== 'running') {
      // No VM, no guest container: only the record is left (a `creating` one never came to be).
      if (!isContainerStep(record.state)) nextContainerState(podId, id, record.state, 'delete');
      await containers.remove(podId, id);
      return;
    }
    const pod = await asRunningPod(store, podRecord, options);
    if (record.state === 'creating') {
      await undoCreate(store, pod, record, options);
      return;
    }
    await withAgent(pod, options.signal, async (agent) => {
      record = await refreshFromAgent(agent, containers, record);
      if ((record.state === 'running' || record.state === 'paused') && options.force) {
        await agent.request('signal_container', { id, signal: 9, all: true });
        await agent.request('wait_container', { id }, { timeoutMs: 10_000 });
        record = await refreshFromAgent(agent, containers, record);
      }
      nextContainerState(podId, id, record.state, 'delete');
      await agent.request('delete_container', { id }).catch((err: { code?: string }) => {
        if (err.code !== 'NOT_FOUND') throw err; // already gone in the guest
      });
    });
    await releaseDisk(store, pod, record.image.serial, id);
    await containers.remove(podId, id);
  });
}

/** Attaches the image disk to the VM unless it is there already, and counts `user` in. */
async function useDisk(store: PodStore, pod: RunningPod, serial: string, path: string, user: string): Promise<void> {
  const disks = pod.record.disks ?? {};
  if (!disks[serial]) {
    await pod.hypervisor.attachDisk(pod.record.vmm, pod.paths, { serial, path });
    disks[serial] = { path, users: [] };
  }
  if (!disks[serial].users.includes(user)) disks[serial].users.push(user);
  pod.record.disks = disks;
  await store.write(pod.record);
}

/** The last container using a disk takes it out of the VM. */
async function releaseDisk(store: PodStore, pod: RunningPod, serial: string, user: string): Promise<void> {
  const disk = pod.record.disks?.[serial];
  if (!disk) return;
  disk.users = disk.users.filter((u) => u !== user);
  if (disk.users.length === 0) {
    await pod.hypervisor.detachDisk(pod.record.vmm, pod.paths, serial);
    delete pod.record.disks![serial];
  }
  await store.write(pod.record);
}
