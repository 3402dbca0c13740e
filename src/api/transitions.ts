// The pod lifecycle as data: which event moves which state where, and through which step. A step
// (`starting`, `stopping`, `deleting`) is written to the record before anything of the event is
// done, so a caller that dies part-way leaves a state that says what to finish or undo
// (api/recover.ts). Everything that changes a pod's state goes through this table.
import { VcError } from '../errors.js';
import type { ContainerStateName, PodStateName } from '../model/states.js';

export type PodEvent = 'start' | 'pause' | 'resume' | 'stop' | 'vmmExited' | 'delete';

/** `to: null` means the pod is gone after the event; `via` is the state held while it happens. */
interface PodTransition {
  via?: 'starting' | 'stopping' | 'deleting';
  to: PodStateName | null;
}

const podTransitions: Record<PodStateName, Partial<Record<PodEvent, PodTransition>>> = {
  ready: { start: { via: 'starting', to: 'running' }, delete: { via: 'deleting', to: null } },
  running: { pause: { to: 'paused' }, stop: { via: 'stopping', to: 'stopped' }, vmmExited: { to: 'stopped' } },
  paused: { resume: { to: 'running' }, stop: { via: 'stopping', to: 'stopped' }, vmmExited: { to: 'stopped' } },
  stopped: { start: { via: 'starting', to: 'running' }, delete: { via: 'deleting', to: null } },
  // Steps take no events: whoever holds the lock next finishes or undoes them first.
  starting: {},
  stopping: {},
  deleting: {},
};

/** Where an interrupted step goes: a start is undone (back to where it began), the others finish. */
export const stepOutcome = {
  starting: { done: 'running', undone: 'from' },
  stopping: { done: 'stopped' },
  deleting: { done: null },
} as const;

function transition(id: string, from: PodStateName, event: PodEvent): PodTransition {
  const found = podTransitions[from][event];
  if (found !== undefined) return found;
  if (event === 'delete' && (from === 'running' || from === 'paused')) {
    throw new VcError('POD_RUNNING', `pod ${id} is ${from}: stop it before deleting it (or delete it with force)`);
  }
  throw new VcError('ILLEGAL_TRANSITION', `pod ${id}: cannot ${event} a pod that is ${from}`);
}

/** The state after `event`, or null when the pod is gone; throws when `event` cannot happen. */
export function nextState(id: string, from: PodStateName, event: PodEvent): PodStateName | null {
  return transition(id, from, event).to;
}

/** The state the pod holds while `event` happens (none for a change with nothing to undo). */
export function stepState(id: string, from: PodStateName, event: PodEvent): PodTransition['via'] {
  return transition(id, from, event).via;
}

export function canHappen(from: PodStateName, event: PodEvent): boolean {
  return podTransitions[from][event] !== undefined;
}

export type ContainerEvent = 'start' | 'pause' | 'resume' | 'exited' | 'delete';

interface ContainerTransition {
  via?: 'creating' | 'starting';
  to: ContainerStateName | null;
}

const containerTransitions: Record<ContainerStateName, Partial<Record<ContainerEvent, ContainerTransition>>> = {
  created: { start: { via: 'starting', to: 'running' }, exited: { to: 'stopped' }, delete: { to: null } },
  running: { pause: { to: 'paused' }, exited: { to: 'stopped' } },
  paused: { resume: { to: 'running' }, exited: { to: 'stopped' } },
  stopped: { delete: { to: null } },
  creating: {},
  starting: {},
};

function containerTransition(podId: string, id: string, from: ContainerStateName, event: ContainerEvent): ContainerTransition {
  const found = containerTransitions[from][event];
  if (found !== undefined) return found;
  if (event === 'delete' && (from === 'running' || from === 'paused')) {
    throw new VcError('CONTAINER_RUNNING', `container ${id} in pod ${podId} is ${from}: stop it before deleting it (or delete it with force)`);
  }
  throw new VcError('ILLEGAL_TRANSITION', `container ${id} in pod ${podId}: cannot ${event} a container that is ${from}`);
}

export function nextContainerState(podId: string, id: string, from: ContainerStateName, event: ContainerEvent): ContainerStateName | null {
  return containerTransition(podId, id, from, event).to;
}

export function containerStepState(podId: string, id: string, from: ContainerStateName, event: ContainerEvent): ContainerTransition['via'] {
  return containerTransition(podId, id, from, event).via;
}
