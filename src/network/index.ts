// The host side of pod networking (DESIGN.md §10, issue 13 item 2): a pod's network namespace,
// CNI, taps + tc redirects. For the pod lifecycle: planPodNetwork → record → setUpPodNetwork;
// tearDownPodNetwork(plan) to end or undo it.
export * from './pod-network.js';
export * from './netns.js';
export * from './cni.js';
export * from './default-conflist.js';
export * from './tap.js';
export * from './ipam.js';
