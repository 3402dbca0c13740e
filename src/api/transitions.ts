// The pod lifecycle as data: which event moves which state where. Everything that changes a pod's
// state goes through `nextState`, so an illegal request fails the same way everywhere.
import { VcError } from '../errors.js';
import type { ContainerStateName, PodStateName } from '../model/states.js';

export type PodEvent = 'start' | 'pause' | 'resume' | 'stop' | 'vmmExited' | 'delete';

/** `null` means the pod is gone after the event. */
const podTransitions: Record<PodStateName, Partial<Record<PodEvent, PodStateName | null>>> = {
  ready: { start: 'running', delete: null },
  running: { pause: 'paused', stop: 'stopped', vmmExited: 'stopped' },
  paused: { resume: 'running', stop: 'stopped', vmmExited: 'stopped' },
  stopped: { start: 'running', delete: null },
};

export function nextState(id: string, from: PodStateName, event: PodEvent): PodStateName | null {
  const to = podTransitions[from][event];
  if (to !== undefined) return to;
  if (event === 'delete' && (from === 'running' || from === 'paused')) {
    throw new VcError('POD_RUNNING', `pod ${id} is ${from}: stop it before deleting it`);
  }
  throw new VcError('ILLEGAL_TRANSITION', `pod ${id}: cannot ${event} a pod that is ${from}`);
}

export function canHappen(from: PodStateName, event: PodEvent): boolean {
  return podTransitions[from][event] !== undefined;
}

export type ContainerEvent = 'start' | 'exited' | 'delete';

const containerTransitions: Record<ContainerStateName, Partial<Record<ContainerEvent, ContainerStateName | null>>> = {
  created: { start: 'running', exited: 'stopped', delete: null },
  running: { exited: 'stopped' },
  stopped: { delete: null },
};

export function nextContainerState(podId: string, id: string, from: ContainerStateName, event: ContainerEvent): ContainerStateName | null {
  const to = containerTransitions[from][event];
  if (to !== undefined) return to;
  if (event === 'delete' && from === 'running') {
    throw new VcError('CONTAINER_RUNNING', `container ${id} in pod ${podId} is running: stop it before deleting it`);
  }
  throw new VcError('ILLEGAL_TRANSITION', `container ${id} in pod ${podId}: cannot ${event} a container that is ${from}`);
}
