// Pod lifecycle: create (VM prepared, not running), start, stop, delete. Every call works from a
// fresh process: it reads the pod's state from disk under the pod's lock and writes it back.
import { readFile } from 'node:fs/promises';
import { VcError } from '../errors.js';
import { resolveKernel } from '../guest/kernel.js';
import { buildInitrd } from '../guest/initrd.js';
import { imagesDirOf } from '../guest/image/index.js';
import { guestCmdline } from '../hypervisor/cmdline.js';
import { checkDiskSlots, checkPodLimits } from '../hypervisor/limits.js';
import { resolveHypervisorKind } from '../hypervisor/select.js';
import { endpointSockets, type Hypervisor, type VmSpec } from '../hypervisor/types.js';
import { nativeExecutable } from '../native.js';
import { CrashPoints } from '../crash-points.js';
import { isPodStep } from '../model/states.js';
import { hostnameFromId } from '../model/hostname.js';
import { RECORD_VERSION, type BootArtifacts, type PodRecord, type VmmRecord } from '../model/records.js';
import type { PodStore } from '../store/pod-store.js';
import type { AgentClient } from '../agent/index.js';
import { connectAgent } from './agent-link.js';
import { parsePodConfig, type PodConfig, type PodConfigInput } from '../model/pod-config.js';
import { hypervisorOf, storeFor, type CallOptions } from './context.js';
import { statusOf, type PodStatus } from './pod-status.js';
import { allHypervisors, beginStep, hasVmm, finishDelete, finishStop, settledPod, settledPodOrGone, undoStart, withPodLock } from './recover.js';
import { nextState, stepState } from './transitions.js';
import { ContainerStore } from '../store/container-store.js';
import { createInGuest, prepareImage, startInGuest } from './container.js';
import { startingPod, withAgent } from './pod-session.js';
import { configureGuestNetwork, planNetwork, setUpNetwork } from './pod-network.js';
import { checkCanTemplate, checkNics, checkTemplateVersion, podConfigFromTemplate, reseedRestored, templateBoot, templateOf } from './template-pod.js';
import { TemplateStore } from '../store/template-store.js';
import type { HypervisorKind } from '../model/hypervisor.js';

const UNIX_SOCKET_PATH_MAX = 107;

export async function createPod(input: PodConfigInput, options: CallOptions = {}): Promise<PodStatus> {
  const parsed = parsePodConfig(input);
  if (parsed.template === undefined) return createPodOf(parsed, resolveHypervisorKind(parsed.hypervisor), options);
  // From a template: its vCPUs, memory, kernel and initrd, on the built-in VMM (no boot to prepare).
  const store = storeFor(options);
  await store.checkRoot(); // the template's files say what the VMM runs: only from a root that is ours
  const template = await new TemplateStore(store.root).read(parsed.template);
  const config = podConfigFromTemplate(input as Record<string, unknown>, parsed, template);
  const hypervisor = hypervisorOf(options, 'kvm');
  checkCanTemplate(hypervisor);
  await checkTemplateVersion(hypervisor, template);
  return createPodOf(config, 'kvm', options, templateBoot(template));
}

/**
 * createPod for a config already parsed, on hypervisor `kind`; with `boot`, the kernel and initrd
 * are those (a template's) instead of resolved and built here.
 */
export async function createPodOf(config: PodConfig, kind: HypervisorKind, options: CallOptions, boot?: BootArtifacts): Promise<PodStatus> {
  const store = storeFor(options);
  checkPodLimits(config, hypervisorOf(options, kind));
  const paths = store.paths(config.id);
  const sockets = [paths.qmpSocket, paths.controlSocket, ...endpointSockets(hypervisorOf(options, kind).agentEndpoint(paths))];
  const longest = sockets.reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
  if (Buffer.byteLength(longest) > UNIX_SOCKET_PATH_MAX) {
    throw new VcError('INVALID_CONFIG', `root: ${JSON.stringify(store.root)} is too long: socket path ${longest} exceeds ${UNIX_SOCKET_PATH_MAX} bytes`);
  }
  await hypervisorOf(options, kind).check();

  // The slow, cached steps come before anything is written for the pod, so a failure leaves nothing.
  if (!boot) {
    const kernel = await resolveKernel({
      kernelPath: config.kernel?.path,
      modulesDir: config.kernel?.modulesDir,
      onProgress: options.onProgress,
      signal: options.signal,
    });
    const initrd = await buildInitrd({ agentPath: nativeExecutable('vc-agent'), kernel, onProgress: options.onProgress });
    boot = { kernelPath: kernel.kernelPath, kernelRelease: kernel.release, initrdPath: initrd.path, initrdDigest: initrd.digest };
  }
  // Images of the listed containers are built now, so a bad one fails the create, not the start.
  const digests = new Set<string>();
  for (const container of config.containers) digests.add((await prepareImage(container, options)).digest);
  checkDiskSlots(config.id, digests.size, hypervisorOf(options, kind));

  const now = new Date().toISOString();
  const record: PodRecord = {
    version: RECORD_VERSION,
    id: config.id,
    config,
    hypervisor: kind,
    state: 'ready',
    boot,
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
  return startPodWith(id, options, { configureGuestNetwork: true });
}

/**
 * startPod, for createTemplate: a template's guest is snapshotted with its NICs unconfigured, so a
 * pod restored from it gets its own addresses and routes from the usual configure_network and
 * none of the template pod's (the agent only adds addresses, and would keep those).
 */
export async function startPodWith(id: string, options: StartOptions, how: { configureGuestNetwork: boolean; snapshotDir?: string }): Promise<PodStatus> {
  const store = storeFor(options);
  return withPodLock(store, id, options, async () => {
    const steps = new CrashPoints('startPod', id);
    steps.mark('locked');
    const record = await settledPodOrGone(store, id, options);
    stepState(id, record.state, 'start'); // throws if a pod in this state cannot start
    const hypervisor = hypervisorOf(options, record.hypervisor);
    const spec = vmSpec(store, record);
    if (how.snapshotDir) spec.snapshotDir = how.snapshotDir;
    // A pod from a template is restored from its snapshot instead of booted.
    const template = record.config.template !== undefined ? await templateOf(store.root, record) : undefined;
    if (template) {
      steps.mark('template-read');
      checkCanTemplate(hypervisor);
      await checkTemplateVersion(hypervisor, template);
      steps.mark('template-checked');
    }
    await planNetwork(store, record); // written with the step, before any of it is made
    steps.mark('network-planned');
    delete record.vmm; // the last run's VMM: from now on `vmm` is this start's
    await beginStep(store, record, hypervisor, 'start', 'starting');
    steps.reach('starting-recorded');
    try {
      spec.network = await setUpNetwork(store, record, options.signal, (name) => steps.mark(name));
      steps.reach('network-made');
      const vmmSteps = { signal: options.signal, step: (name: string) => steps.reach(name) };
      if (template) {
        checkNics(record, template, spec.network);
        options.onProgress?.(`restoring pod ${id} from template ${template.name}`);
        const paths = new TemplateStore(store.root).paths(template.name);
        record.vmm = await hypervisor.restore!(spec, { state: paths.state, memory: paths.memory }, vmmSteps);
      } else {
        options.onProgress?.(`booting pod ${id} (${record.hypervisor})`);
        record.vmm = await hypervisor.start(spec, vmmSteps);
      }
      steps.reach('vmm-started');
      record.disks = {};
      await store.write(record);
      steps.reach('vmm-recorded');
      // On the connection the wait made, rather than a new one (a connect and a hello less): the
      // restored agent's `restored` first (it serves nothing before), then the guest's network —
      // sent right behind it, not after its answer: the agent serves a connection's requests in
      // order, so one round trip less, and a refused `restored` is still the error reported.
      const network = spec.network;
      let reseeded = false;
      await waitForAgent(hypervisor, spec, record.vmm, options, async (agent, retried) => {
        steps.reach('agent-ready');
        let configured: Promise<void> | undefined;
        if (template && !reseeded) {
          const reseed = reseedRestored(agent, record, template, network, options.signal, retried);
          if (how.configureGuestNetwork) {
            configured = configureGuestNetwork(agent, record, options);
            configured.catch(() => {}); // awaited below, once `restored` has answered
          }
          record.restoreEpoch = await reseed;
          await store.write(record);
          reseeded = true;
          steps.reach('agent-reseeded');
        }
        if (how.configureGuestNetwork) {
          await (configured ?? configureGuestNetwork(agent, record, options));
          steps.reach('network-configured');
        }
      }, template !== undefined);
      await startListedContainers(store, record, options, steps);
    } catch (err) {
      // A VMM that died under the start (e.g. while the listed containers were being created)
      // fails it as one that died before the agent answered does, whatever call noticed first.
      const vmmDied = record.vmm !== undefined && !(await hypervisor.isRunning(record.vmm, spec.paths).catch(() => true));
      // The pod starts whole or not at all: its VM goes, and it returns to where it was. If even
      // that fails, the record stays `starting` for the next caller to undo; the cause is `err`.
      await undoStart(store, record, hypervisor).catch((undoErr: Error) => {
        options.onProgress?.(`pod ${id}: undoing the failed start failed too (${undoErr.message}); the next call on the pod retries`);
      });
      if (vmmDied && (err as VcError).code !== 'AGENT_UNREACHABLE') {
        throw new VcError('AGENT_UNREACHABLE', `pod ${id}: the ${hypervisor.kind} process exited during the start: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
    record.state = nextState(id, record.step!.from, 'start') ?? record.state;
    delete record.step;
    delete record.stoppedAt;
    delete record.stopReason;
    await store.write(record);
    steps.reach('running-recorded');
    // The pod runs and is recorded so: a failing status query must not report the start as failed.
    return statusOf(record, store, await hypervisor.vmState(record.vmm, spec.paths).catch(() => null));
  });
}

/** Creates and starts the containers the pod config lists, in order, in the fresh VM. */
async function startListedContainers(store: PodStore, record: PodRecord, options: StartOptions, steps: CrashPoints): Promise<void> {
  if (record.config.containers.length === 0) return;
  const pod = startingPod(store, record, options);
  const containers = new ContainerStore(store);
  for (const config of record.config.containers) {
    options.onProgress?.(`starting container ${config.id}`);
    await containers.remove(record.id, config.id); // a record from an earlier run of the pod
    const image = await prepareImage(config, options);
    await createInGuest(store, pod, config, image, options);
    steps.reach(`container-${config.id}-created`);
    await withAgent(pod, options.signal, (agent) => startInGuest(store, agent, record.id, config.id));
    steps.reach(`container-${config.id}-started`);
  }
}

export interface StopOptions extends CallOptions {
  /** How long the guest gets to power off after the agent's shutdown before the VMM is ended. */
  timeoutMs?: number;
}

export async function stopPod(id: string, options: StopOptions = {}): Promise<PodStatus> {
  const store = storeFor(options);
  return withPodLock(store, id, options, async () => {
    const steps = new CrashPoints('stopPod');
    const interrupted = isPodStep((await store.read(id)).state);
    const record = await settledPodOrGone(store, id, options);
    if (record.state === 'stopped' && record.stopReason && record.stopReason !== 'requested') {
      return statusOf(record, store); // the VMM already went away; nothing is left to stop
    }
    if (interrupted && !hasVmm(record)) {
      return statusOf(record, store); // an interrupted start was undone (or stop finished): nothing runs
    }
    stepState(id, record.state, 'stop');
    const hypervisor = hypervisorOf(options, record.hypervisor);
    const paths = store.paths(id);
    const wasRunning = record.state === 'running';
    await beginStep(store, record, hypervisor, 'stop', 'stopping');
    steps.reach('stopping-recorded');
    if (record.vmm) {
      if (wasRunning) await askGuestToPowerOff(hypervisor, paths, record.vmm, options);
      steps.reach('guest-asked');
      await hypervisor.stop(record.vmm, paths, { timeoutMs: options.timeoutMs ?? 3000 });
      steps.reach('vmm-stopped');
    }
    await finishStop(store, record, hypervisor);
    steps.reach('stopped-recorded');
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
  return withPodLock(store, id, options, async () => {
    const record = await settledPodOrGone(store, id, options);
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

export interface DeleteOptions extends CallOptions {
  /**
   * Delete whatever the record says: a running pod's VMM is killed, and a pod whose record is
   * unreadable (or from a newer version) is removed with every process, cgroup and file found
   * for it by its directory and id.
   */
  force?: boolean;
}

export async function deletePod(id: string, options: DeleteOptions = {}): Promise<void> {
  const store = storeFor(options);
  await withPodLock(store, id, options, async () => {
    const steps = new CrashPoints('deletePod');
    let record: PodRecord | null;
    try {
      record = await settledPod(store, id, options);
    } catch (err) {
      const code = (err as VcError).code;
      const unreadable = code === 'STATE_CORRUPT' || code === 'STATE_UNSUPPORTED' || code === 'POD_NOT_FOUND';
      const networkStuck = code === 'NETWORK_FAILED' || code === 'NETWORK_UNAVAILABLE' || code === 'CNI_PLUGIN_FAILED';
      if (networkStuck && options.force) {
        // Settling the pod's step failed in its network teardown: a forced delete goes on.
        options.onProgress?.(`pod ${id}: ${(err as Error).message}; removing it by force`);
        const stuck = await store.read(id);
        await finishDelete(store, id, [hypervisorOf(options, stuck.hypervisor)], stuck, undefined, { force: true, onProgress: options.onProgress });
        return;
      }
      if (!unreadable || !(await store.exists(id))) throw err;
      if (!options.force) {
        // Say how to get out: without this the user's only way was rm -rf by hand.
        throw new VcError(code, `${(err as Error).message}; to remove the pod anyway, delete it with force (deletePod(id, { force: true }) / virtc pod delete --force)`, { cause: err });
      }
      options.onProgress?.(`pod ${id}: ${(err as Error).message}; removing it by force`);
      await finishDelete(store, id, allHypervisors(options), undefined, undefined, { force: true, onProgress: options.onProgress });
      return;
    }
    if (!record) return; // an interrupted delete was finished
    if (!options.force) stepState(id, record.state, 'delete');
    const hypervisor = hypervisorOf(options, record.hypervisor);
    await beginStep(store, record, hypervisor, 'delete', 'deleting');
    steps.reach('deleting-recorded');
    await finishDelete(store, id, [hypervisor], record, (name) => steps.reach(name), { force: options.force, onProgress: options.onProgress });
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
    // Container images are attached from the default cache (container.ts resolveImage).
    diskDirs: [imagesDirOf()],
  };
}

/**
 * Waits until the agent answers a hello, then runs `onAgent` on that connection. For a pod
 * restored from a template (`restored`): right after a restore the guest's vsock driver may close
 * a connection it accepted before it handled the transport reset (seen in L1 ~0.6 s after the
 * restore): such a close is retried, `onAgent` with it, at most RESTORED_CLOSE_RETRIES times, and
 * counted in the error if it gives up. `retried` tells `onAgent` that an earlier connection closed
 * under it (a `restored` sent on it may have been applied).
 */
async function waitForAgent(hypervisor: Hypervisor, spec: VmSpec, vmm: PodRecord['vmm'] & {}, options: StartOptions,
  onAgent?: (agent: AgentClient, retried: boolean) => Promise<void>, restored = false): Promise<void> {
  const timeoutMs = options.bootTimeoutMs ?? 120_000;
  const vmmGone = new AbortController();
  const watch = setInterval(() => {
    void hypervisor.isRunning(vmm, spec.paths).then((alive) => {
      if (!alive) vmmGone.abort(new Error(`the ${hypervisor.kind} process exited during boot`));
    }, () => {
      // A check that fails says nothing about the VMM; the boot timeout still bounds the wait.
      // (Unhandled, the rejection would end the whole process.)
    });
  }, 250);
  const signal = options.signal ? AbortSignal.any([options.signal, vmmGone.signal]) : vmmGone.signal;
  const deadline = Date.now() + timeoutMs;
  let closed = 0;
  let restoredFailed: unknown; // the agent answered, and `onAgent` failed: its own error
  try {
    for (;;) {
      try {
        const agent = await connectWhenListening(hypervisor, spec, vmm, deadline, signal);
        try {
          await onAgent?.(agent, closed > 0);
        } catch (err) {
          restoredFailed = err;
          throw err;
        } finally {
          agent.close();
        }
        break;
      } catch (err) {
        const closedByGuest = restored && (err as { code?: string }).code === 'AGENT_CLOSED' && !signal.aborted;
        if (!closedByGuest || closed >= RESTORED_CLOSE_RETRIES || Date.now() + RECONNECT_DELAY_MS >= deadline) throw err;
        restoredFailed = undefined;
        closed++;
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
      }
    }
    options.onProgress?.(`pod ${spec.id} is ready${closed ? ` (${closed} connection(s) closed by the restored guest first)` : ''}`);
  } catch (err) {
    if (err === restoredFailed && (err as { code?: string }).code !== 'AGENT_CLOSED' && !vmmGone.signal.aborted) throw err;
    let reason = vmmGone.signal.aborted ? (vmmGone.signal.reason as Error).message : (err as Error).message;
    if (closed > 0) reason += ` (after ${closed} connection(s) the restored guest closed, each retried)`;
    // How it ended, where the hypervisor knows (vc-vmm's monitor line, QEMU's recorded exit): what to look at first.
    if (vmmGone.signal.aborted) {
      const detail = await hypervisor.exitDetail?.(vmm, spec.paths).catch(() => null);
      if (detail) reason += ` (${detail})`;
    }
    throw new VcError('AGENT_UNREACHABLE', `pod ${spec.id}: the guest agent did not answer: ${reason}${await consoleTail(spec.paths.console)}`, { cause: err });
  } finally {
    clearInterval(watch);
  }
}

/**
 * QEMU's virtio-serial socket accepts at once and the hello waits for the guest; a hybrid vsock
 * connection is refused (closed) until the agent listens, so a refusal during boot means "again".
 */
async function connectWhenListening(hypervisor: Hypervisor, spec: VmSpec, vmm: VmmRecord, deadline: number, signal: AbortSignal) {
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
/** The guest resets connections once, when it handles the transport reset: a few closes are that; more are something else. */
const RESTORED_CLOSE_RETRIES = 5;

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
