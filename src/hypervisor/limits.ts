// What a pod asks of its hypervisor, checked against what the hypervisor states it can run, so a
// pod that cannot boot fails at createPod (INVALID_CONFIG naming the limit), not at startPod.
import { VcError } from '../errors.js';
import type { PodConfig } from '../model/pod-config.js';
import type { Hypervisor } from './types.js';

function outside(value: number, range: { min: number; max: number }): boolean {
  return value < range.min || value > range.max;
}

/** Throws INVALID_CONFIG naming the field, the value and the hypervisor's limit. */
export function checkPodLimits(config: Pick<PodConfig, 'id' | 'memoryMiB' | 'vcpus'>, hypervisor: Pick<Hypervisor, 'kind' | 'limits'>): void {
  const { limits, kind } = hypervisor;
  for (const field of ['memoryMiB', 'vcpus'] as const) {
    const range = limits[field];
    if (outside(config[field], range)) {
      throw new VcError('INVALID_CONFIG', `invalid pod config: ${field}: hypervisor "${kind}" takes ${range.min}..${range.max}, got ${config[field]} (pod ${config.id})`);
    }
  }
}

/** Throws INVALID_CONFIG when the pod's containers need more image disks than the hypervisor has. */
export function checkDiskSlots(podId: string, images: number, hypervisor: Pick<Hypervisor, 'kind' | 'limits'>): void {
  const slots = hypervisor.limits.diskSlots;
  if (slots !== null && images > slots) {
    throw new VcError('INVALID_CONFIG', `invalid pod config: containers: ${images} distinct images, but hypervisor "${hypervisor.kind}" holds at most ${slots} image disks (pod ${podId})`);
  }
}
