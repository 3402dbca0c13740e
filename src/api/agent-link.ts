// Opens agent connections for a pod, whichever hypervisor carries the channel.
import { AgentClient, dialHybridVsock, dialLeasedPort, dialUnix } from '../agent/index.js';
import type { AgentEndpoint } from '../hypervisor/types.js';

/** Long enough for an agent under TCG in L1 to answer a hello (≈ 1 s there), short beside the 30 s request timeout. */
const LEASED_PORT_HELLO_RETRY_MS = 5000;

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
    // Sessions follow each other on a port: a hello lost to a killed client's half frame is sent again.
    return AgentClient.connect(() => Promise.resolve(socket), { ...options, timeoutMs: left, helloRetryMs: LEASED_PORT_HELLO_RETRY_MS });
  }
  const dial = endpoint.kind === 'unix'
    ? () => dialUnix(endpoint.path, dialOptions)
    : () => dialHybridVsock(endpoint.path, endpoint.port, dialOptions);
  return AgentClient.connect(dial, options);
}
