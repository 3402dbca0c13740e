// Reading containers: containerStatus asks the agent while the pod runs; listContainers reads records.
import { ContainerStore } from '../store/container-store.js';
import { storeFor, type CallOptions } from './context.js';
import { lockedRunningPod } from './container.js';
import { containerStatusOf, refreshFromAgent, type ContainerStatus } from './container-status.js';
import { withAgent } from './pod-session.js';
import { settledPodOrGone, withPodLock } from './recover.js';

export async function containerStatus(podId: string, id: string, options: CallOptions = {}): Promise<ContainerStatus> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  return withPodLock(store, podId, options, async () => {
    const pod = await settledPodOrGone(store, podId, options);
    await containers.read(podId, id); // CONTAINER_NOT_FOUND before anything else
    if (pod.state !== 'running') return containerStatusOf(await containers.read(podId, id));
    const running = await lockedRunningPod(store, podId, options);
    const record = await containers.read(podId, id); // as settled
    if (record.state === 'stopped') return containerStatusOf(record);
    return containerStatusOf(await withAgent(running, options.signal, (agent) => refreshFromAgent(agent, containers, record)));
  });
}

export async function listContainers(podId: string, options: CallOptions = {}): Promise<ContainerStatus[]> {
  const store = storeFor(options);
  await store.read(podId);
  const containers = new ContainerStore(store);
  const list: ContainerStatus[] = [];
  for (const id of await containers.ids(podId)) list.push(containerStatusOf(await containers.read(podId, id)));
  return list;
}
