// Opens agent connections for a pod, whichever hypervisor carries the channel.
import { AgentClient, dialHybridVsock, dialUnix } from '../agent/index.js';
import type { AgentEndpoint } from '../hypervisor/types.js';

export function connectAgent(endpoint: AgentEndpoint, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<AgentClient> {
  const dialOptions = { timeoutMs: options.timeoutMs ?? 10_000, signal: options.signal };
  const dial = endpoint.kind === 'unix'
    ? () => dialUnix(endpoint.path, dialOptions)
    : () => dialHybridVsock(endpoint.path, endpoint.port, dialOptions);
  return AgentClient.connect(dial, options);
}
