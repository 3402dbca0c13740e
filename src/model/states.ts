// The names of pod and container states. Which event moves which state where is api/transitions.ts.
// `starting`, `stopping`, `deleting` (pods) and `creating`, `starting` (containers) are held only
// while a call owns the pod's lock: found with the lock free, the call that made them died, and
// the next caller finishes or rolls back the step (api/recover.ts).

export const podStates = ['ready', 'starting', 'running', 'paused', 'stopping', 'stopped', 'deleting'] as const;
export type PodStateName = (typeof podStates)[number];

/** The states a pod is in only while a step runs. */
export const podSteps = ['starting', 'stopping', 'deleting'] as const satisfies readonly PodStateName[];

/** `paused`: running with its cgroup frozen (pauseContainer). */
export const containerStates = ['creating', 'created', 'starting', 'running', 'paused', 'stopped'] as const;
export type ContainerStateName = (typeof containerStates)[number];

export const containerSteps = ['creating', 'starting'] as const satisfies readonly ContainerStateName[];

export function isPodStep(state: PodStateName): state is (typeof podSteps)[number] {
  return (podSteps as readonly string[]).includes(state);
}

export function isContainerStep(state: ContainerStateName): state is (typeof containerSteps)[number] {
  return (containerSteps as readonly string[]).includes(state);
}
