/**
 * `create` in the daemon: the bundle's spec through the shared translation (src/oci) into a
 * ContainerConfig, the pod brought up (a container of its own) or found (a member of a sandbox),
 * the container created and its init attached. What fails is undone, pod included.
 */
import { createContainer, deleteContainer } from '../api/container.js';
import { attachContainer } from '../api/container-process.js';
import { createPod, deletePod, startPod } from '../api/pod.js';
import { podStatus } from '../api/pod-status.js';
import type { CallOptions } from '../api/context.js';
import type { PodProcess } from '../api/enter.js';
import { containerConfigSchema } from '../model/container-config.js';
import { containerFromSpec, supportedFields, type ContainerOfPid } from '../oci/container-from-spec.js';
import { engineRole, podConfigFor, podIdFor, containerIdFor } from '../oci/pod-annotations.js';
import { readBundleSpec, specNetwork, specRootPath, type OciSpec, type SpecNetwork } from '../oci/spec.js';
import type { ContainerRecord } from './state-store.js';

const CONTAINER_FIELDS: ReadonlySet<string> = new Set(Object.keys(containerConfigSchema.shape));

export interface Planned {
  spec: OciSpec;
  record: ContainerRecord;
}

/** Reads and checks the bundle: the record to write before anything is made. */
export async function planCreate(id: string, bundle: string): Promise<Planned> {
  const spec = await readBundleSpec(bundle);
  const role = engineRole(spec.annotations, id);
  const record: ContainerRecord = {
    id,
    bundle,
    pod: podIdFor(role.kind === 'member' ? role.sandboxId : id),
    containerId: containerIdFor(id),
    ownsPod: role.kind !== 'member',
    annotations: spec.annotations,
    status: 'creating',
    holderPid: 0,
    createdAt: new Date().toISOString(),
  };
  return { spec, record };
}

export interface Created {
  init: PodProcess;
  /** Host bind mounts copied in; the writable ones are copied back when the init exits. */
  hostMounts: Array<{ readOnly?: boolean }>;
}

export async function makeContainer(
  planned: Planned,
  options: CallOptions,
  containerOfPid: ContainerOfPid,
  log: { warnOnce(message: string): void },
): Promise<Created> {
  const { spec, record } = planned;
  const translated = containerFromSpec(spec, record.containerId, specRootPath(spec, record.bundle), containerOfPid);
  const config = supportedFields(translated.config, CONTAINER_FIELDS, translated.warnings);
  for (const w of translated.warnings) log.warnOnce(w);
  let podMade = false;
  try {
    if (record.ownsPod) {
      await createPod(podConfigFor(record.pod, spec, podNetwork(spec, record), log) as Parameters<typeof createPod>[0], options);
      podMade = true;
      await startPod(record.pod, options);
    } else {
      const status = await podStatus(record.pod, options).catch(() => null);
      if (status?.state !== 'running') {
        throw new Error(`the sandbox ${record.pod} of container ${record.id} is not running (start its infra container first)`);
      }
    }
    await createContainer(record.pod, config as Parameters<typeof createContainer>[1], options);
    const init = await attachContainer(record.pod, record.containerId, options);
    return { init, hostMounts: (config.mounts as Array<{ readOnly?: boolean }> | undefined) ?? [] };
  } catch (err) {
    if (podMade) await deletePod(record.pod, { ...options, force: true }).catch(() => {});
    else if (!record.ownsPod) await deleteContainer(record.pod, record.containerId, { ...options, force: true }).catch(() => {});
    throw err;
  }
}

/**
 * The network the pod takes: the spec's namespace path (podman's); for a new namespace without a
 * path (docker's), the one the CLI started the holder in (pinned), which the engine's prestart hook filled.
 */
export function podNetwork(spec: OciSpec, record: ContainerRecord): SpecNetwork {
  const network = specNetwork(spec);
  if (network.kind === 'new' && record.netns) return { kind: 'path', path: record.netns };
  return network;
}

/** Removes what a record's container left in the API: its pod (if it owns one) or itself. */
export async function removeFromApi(record: ContainerRecord, options: CallOptions): Promise<void> {
  const gone = (err: { code?: string }): void => {
    if (!/NOT_FOUND|NOT_RUNNING/.test(err.code ?? '')) throw err;
  };
  if (record.ownsPod) await deletePod(record.pod, { ...options, force: true }).catch(gone);
  else await deleteContainer(record.pod, record.containerId, { ...options, force: true }).catch(gone);
}
