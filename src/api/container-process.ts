// Processes of containers: exec into a running container, and attaching to a container's init
// (optionally starting it on the same connection, so none of its output is missed).
import { VcError } from '../errors.js';
import { describeInput } from '../model/config-errors.js';
import { execConfinementSchema, type ExecConfinementInput } from '../model/container-security.js';
import { agentExecConfinement } from '../oci/confinement.js';
import { ContainerStore } from '../store/container-store.js';
import { storeFor } from './context.js';
import { lockedRunningPod, startInGuest } from './container.js';
import { withPodLock } from './recover.js';
import { wrapProcess, type ExecOptions, type PodProcess } from './enter.js';
import { openAgent, runningPod } from './pod-session.js';

export interface ContainerExecOptions extends ExecOptions, ExecConfinementInput {
  /** USER or USER:GROUP, names from the container's /etc/passwd and /etc/group, or numbers. */
  user?: string;
}

/** The exec's own confinement (security, rlimits, additionalGids) as the agent takes it. */
function execConfinement(options: ContainerExecOptions): Record<string, unknown> {
  const given = { security: options.security, rlimits: options.rlimits, additionalGids: options.additionalGids };
  const parsed = execConfinementSchema.safeParse(given, { reportInput: true });
  if (!parsed.success) throw new VcError('INVALID_CONFIG', `invalid exec options: ${describeInput(parsed.error.issues)}`, { cause: parsed.error });
  return agentExecConfinement(parsed.data);
}

export async function enterContainer(podId: string, id: string, argv: string[], options: ContainerExecOptions = {}): Promise<PodProcess> {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((arg) => typeof arg !== 'string')) {
    throw new VcError('INVALID_CONFIG', `argv: expected a non-empty array of strings, got ${JSON.stringify(argv)}`);
  }
  const confinement = execConfinement(options);
  const store = storeFor(options);
  await new ContainerStore(store).read(podId, id);
  const pod = await runningPod(store, podId, options);
  const agent = await openAgent(pod, options.signal);
  try {
    const proc = await agent.startProcess('exec_container', {
      id,
      argv,
      ...(options.env ? { env: Object.entries(options.env).map(([k, v]) => `${k}=${v}`) } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.user ? { user: options.user } : {}),
      tty: options.tty === true,
      ...(options.tty && options.rows && options.cols ? { rows: options.rows, cols: options.cols } : {}),
      ...confinement,
    }, options.tty === true);
    return wrapProcess(agent, proc);
  } catch (err) {
    await agent.close();
    throw err;
  }
}

export interface AttachOptions extends ExecOptions {
  /** Start the container (it must be `created`) once attached. */
  start?: boolean;
}

/** The container's init as a process: its stdio and exit. Holds one agent connection. */
export async function attachContainer(podId: string, id: string, options: AttachOptions = {}): Promise<PodProcess> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  const record = await containers.read(podId, id);
  if (record.initProcess === undefined) throw new VcError('CONTAINER_NOT_FOUND', `container ${id} in pod ${podId} has no init process to attach to`);
  const pod = await runningPod(store, podId, options);
  const agent = await openAgent(pod, options.signal);
  try {
    const proc = await agent.attach(record.initProcess);
    if (options.start) {
      await withPodLock(store, podId, options, async () => {
        await lockedRunningPod(store, podId, options);
        await startInGuest(store, agent, podId, id);
      });
    }
    return wrapProcess(agent, proc);
  } catch (err) {
    await agent.close();
    throw err;
  }
}
