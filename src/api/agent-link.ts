// Opens agent connections for a pod, whichever hypervisor carries the channel.
import { AgentClient, dialHybridVsock, dialLeasedPort, dialUnix } from '../agent/index.js';
import type { AgentEndpoint } from '../hypervisor/types.js';

export async function connectAgent(endpoint: AgentEndpoint, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<AgentClient> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const dialOptions = { timeoutMs, signal: options.signal };
  if (endpoint.kind === 'leased-ports') {
    // The wait for a free port runs before connect()'s own deadline starts, so that running out
    // of time there fails with its own error (all N ports busy), not a generic connect timeout.
    // Both together stay within timeoutMs.
    const started = Date.now();
    const socket = await dialLeasedPort(endpoint.ports, dialOptions);
    const left = timeoutMs > 0 && Number.isFinite(timeoutMs) ? Math.max(1, timeoutMs - (Date.now() - started)) : 0;
    return AgentClient.connect(() => Promise.resolve(socket), { ...options, timeoutMs: left });
  }
  const dial = endpoint.kind === 'unix'
    ? () => dialUnix(endpoint.path, dialOptions)
    : () => dialHybridVsock(endpoint.path, endpoint.port, dialOptions);
  return AgentClient.connect(dial, options);
}
