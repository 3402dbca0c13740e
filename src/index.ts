// The public API of virtcontainers.
export { createPod, startPod, stopPod, deletePod } from './api/pod.js';
export type { StartOptions, StopOptions } from './api/pod.js';
export { podStatus, listPods } from './api/pod-status.js';
export type { PodStatus } from './api/pod-status.js';
export { enterPod } from './api/enter.js';
export type { ExecOptions, ExitStatus, PodProcess } from './api/enter.js';
export type { CallOptions } from './api/context.js';
export type { PodConfig, PodConfigInput, HypervisorChoice } from './api/config.js';
export type { PodStateName } from './api/transitions.js';
export { VcError } from './errors.js';
export type { VcErrorCode } from './errors.js';
export { AgentError } from './agent/errors.js';
export { native as loadNative } from './native.js';
export type { KvmProbe } from './native.js';
