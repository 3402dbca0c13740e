// The names of pod and container states. Which event moves which state where is api/transitions.ts.

export const podStates = ['ready', 'running', 'paused', 'stopped'] as const;
export type PodStateName = (typeof podStates)[number];

export const containerStates = ['created', 'running', 'stopped'] as const;
export type ContainerStateName = (typeof containerStates)[number];
