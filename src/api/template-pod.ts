// Pods started from a template (docs/snapshots.md, "API"): the config checks of
// createPod({ template }), and what startPod does instead of a boot — restore the snapshot, then
// give the restored guest its own identity with the agent's `restored` request before anything
// else reaches it.
import { randomBytes } from 'node:crypto';
import type { AgentClient } from '../agent/index.js';
import { VcError } from '../errors.js';
import type { Hypervisor, VmNetwork } from '../hypervisor/types.js';
import { hostnameFromId } from '../model/hostname.js';
import type { PodConfig } from '../model/pod-config.js';
import type { BootArtifacts, PodRecord } from '../model/records.js';
import type { TemplateRecord } from '../model/template.js';
import { TemplateStore } from '../store/template-store.js';

/** The message every refusal of a template on the wrong hypervisor starts with. */
export const TEMPLATES_NEED_KVM = "UNSUPPORTED: pod templates need the built-in VMM (hypervisor: 'kvm')";

export function unsupported(detail: string): VcError {
  return new VcError('UNSUPPORTED', `${TEMPLATES_NEED_KVM}${detail ? `: ${detail}` : ''}`);
}

/** UNSUPPORTED unless `hypervisor` can snapshot and restore. */
export function checkCanTemplate(hypervisor: Hypervisor): void {
  if (!hypervisor.snapshot || !hypervisor.restore) unsupportedFor(hypervisor.kind);
}

function unsupportedFor(kind: string): never {
  throw unsupported(`hypervisor ${JSON.stringify(kind)} cannot snapshot or restore a VM`);
}

/**
 * The pod config of createPod({ template }) made whole from the template: its vCPUs, memory and
 * kernel. A config that asks for other ones is INVALID_CONFIG naming the field and both values;
 * one that asks for QEMU is UNSUPPORTED.
 */
export function podConfigFromTemplate(input: Record<string, unknown>, config: PodConfig, template: TemplateRecord): PodConfig {
  if (config.hypervisor === 'qemu') throw unsupported(`pod ${config.id} asks for hypervisor "qemu" with template ${JSON.stringify(template.name)}`);
  const differs = (field: 'vcpus' | 'memoryMiB', own: number) => {
    if (input[field] !== undefined && input[field] !== own) {
      throw new VcError('INVALID_CONFIG', `invalid pod config: ${field}: pod ${config.id} asks for ${JSON.stringify(input[field])}, but template ${JSON.stringify(template.name)} has ${own} (a restored pod runs with its template's; leave ${field} out)`);
    }
  };
  differs('vcpus', template.vcpus);
  differs('memoryMiB', template.memoryMiB);
  if (config.kernel && config.kernel.path !== template.kernel.path) {
    throw new VcError('INVALID_CONFIG', `invalid pod config: kernel.path: pod ${config.id} asks for ${JSON.stringify(config.kernel.path)}, but template ${JSON.stringify(template.name)} runs ${JSON.stringify(template.kernel.path)} (leave kernel out)`);
  }
  // A restored VM has exactly the template's NICs: without one, the pod can have no network (and
  // gets none by default); with some, it needs a network to give them.
  const network = input.network === undefined && template.nics.length === 0 ? { mode: 'none' as const } : config.network;
  if ((template.nics.length === 0) !== (network.mode === 'none')) {
    const made = template.nics.length === 0 ? 'without a NIC (network none)' : `with ${template.nics.length} NIC(s)`;
    throw new VcError('INVALID_CONFIG', `invalid pod config: network: pod ${config.id} asks for ${JSON.stringify(network.mode)}, but template ${JSON.stringify(template.name)} was made ${made}; a restored pod has its template's NICs`);
  }
  return { ...config, hypervisor: 'kvm', vcpus: template.vcpus, memoryMiB: template.memoryMiB, network };
}

export function templateBoot(template: TemplateRecord): BootArtifacts {
  return { kernelPath: template.kernel.path, kernelRelease: template.kernel.release, initrdPath: template.initrd.path, initrdDigest: template.initrd.digest };
}

/** TEMPLATE_STALE when the template was written by another vc-vmm than the one that would read it. */
export async function checkTemplateVersion(hypervisor: Hypervisor, template: TemplateRecord): Promise<void> {
  const version = await hypervisor.vmmVersion?.();
  if (version !== undefined && version !== template.vmmVersion) {
    throw new VcError('TEMPLATE_STALE', `template ${JSON.stringify(template.name)} was made by ${template.vmmVersion}, and this is ${version}: snapshots are read only by the VMM that wrote them; make the template again (createTemplate / virtc template create)`);
  }
}

/** The template of a pod being started, from its record. */
export async function templateOf(root: string, record: PodRecord): Promise<TemplateRecord> {
  return new TemplateStore(root).read(record.config.template!);
}

/** A restored VM has the template's NICs: the pod's network must give it as many. */
export function checkNics(record: PodRecord, template: TemplateRecord, network: VmNetwork | undefined): void {
  const have = network?.nics.length ?? 0;
  if (have !== template.nics.length) {
    throw new VcError('INVALID_CONFIG', `pod ${record.id}: network: template ${JSON.stringify(template.name)} was made with ${template.nics.length} NIC(s) and the pod's network (${record.config.network.mode}) gives ${have}; use the network mode the template was made with`);
  }
}

/**
 * Tells the restored agent who it is now: fresh randomness, the host's clock, the pod's host name,
 * a new machine id and the pod's MACs for the template's. Nothing else is sent to a restored agent
 * before this; it refuses everything else until then (RESTORE_PENDING). `retried`: an earlier
 * connection closed under a `restored` that the agent may have applied already (then its
 * guest_info shows this epoch).
 */
export async function reseedRestored(agent: AgentClient, record: PodRecord, template: TemplateRecord, network: VmNetwork | undefined, signal?: AbortSignal, retried = false): Promise<number> {
  const epoch = (record.restoreEpoch ?? 0) + 1;
  const now = Date.now();
  const macs = template.nics.map((nic, i) => ({ from: nic.mac, to: network!.nics[i]!.mac })).filter((m) => m.from.toLowerCase() !== m.to.toLowerCase());
  try {
    const result = await agent.request('restored', {
      epoch,
      time: { sec: Math.floor(now / 1000), nsec: (now % 1000) * 1_000_000 },
      hostname: record.config.hostname ?? hostnameFromId(record.id),
      machineId: randomBytes(16).toString('hex'),
      seed: randomBytes(32).toString('base64'),
      ...(macs.length ? { macs } : {}),
    }, { signal });
    if (result.epoch !== epoch) throw new VcError('AGENT_UNREACHABLE', `pod ${record.id}: the restored agent answered restored with epoch ${JSON.stringify(result.epoch)}, not ${epoch}`);
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_RESTORED') {
      if (retried && (await agent.guestInfo({ signal }).catch(() => null))?.epoch === epoch) return epoch;
      throw new VcError('HYPERVISOR_FAILED', `pod ${record.id}: the agent restored from template ${JSON.stringify(template.name)} saw no restore (its host connection was not reset), so it would run with the template's identity: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  return epoch;
}
