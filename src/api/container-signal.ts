// Signals to a running container: its init, or with `all` every process in its cgroup.
import { constants } from 'node:os';
import { VcError } from '../errors.js';
import { storeFor, type CallOptions } from './context.js';
import { runningPod, withAgent } from './pod-session.js';

export interface KillContainerOptions extends CallOptions {
  /** Every process of the container, not only its init. */
  all?: boolean;
}

export async function killContainer(podId: string, id: string, signal: NodeJS.Signals | number, options: KillContainerOptions = {}): Promise<void> {
  const number = typeof signal === 'number' ? signal : (constants.signals as Record<string, number>)[signal];
  if (number === undefined || !Number.isInteger(number) || number < 0 || number > 64) {
    throw new VcError('INVALID_CONFIG', `signal: ${JSON.stringify(signal)} is not a Linux signal name or number (0..64)`);
  }
  const pod = await runningPod(storeFor(options), podId, options);
  await withAgent(pod, options.signal, (agent) => agent.request('signal_container', { id, signal: number, all: options.all === true }));
}
