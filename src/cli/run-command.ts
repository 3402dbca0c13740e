// `virtc run`: a pod with one container, its stdio here, its exit code as ours. Without --rm the
// stopped pod is kept for inspection; with --rm nothing is left.
import { randomBytes } from 'node:crypto';
import { createPod, deletePod, startPod, stopPod } from '../api/pod.js';
import { createContainer } from '../api/container.js';
import { attachContainer } from '../api/container-process.js';
import { optionalString, parseSpec, stringList, usageOverview, type CommandSpec } from './args.js';
import { containerConfigFrom, containerOptions } from './container-commands.js';
import { podFieldsFrom, podOptions } from './pod-commands.js';
import { parseMapping } from './port-forward-command.js';
import { hostPortName, listenForward, type PortListener } from '../api/port-listen.js';
import { progressReporter } from './progress.js';
import { attachStdio } from './stdio.js';

const run = {
  words: 'run',
  options: {
    ...podOptions, name: { type: 'string', usage: '[--name ID]' }, rm: { type: 'boolean', usage: '[--rm]' },
    publish: { type: 'string', short: 'p', multiple: true, usage: '[-p [HOSTADDR:]HOSTPORT:CONTAINERPORT]...' },
    ...containerOptions,
  },
  tail: '[-- CMD ARG...]',
} satisfies CommandSpec;

export const runUsage = usageOverview([run]);

export async function runCommand(argv: string[]): Promise<number> {
  const parsed = parseSpec(argv, run);
  const { values } = parsed;
  const root = optionalString(values.root);
  const onProgress = progressReporter();
  const podId = optionalString(values.name) ?? `run-${randomBytes(4).toString('hex')}`;
  const container = containerConfigFrom('main', parsed);
  const published = stringList(values.publish).map(parseMapping); // checked before anything is made
  await createPod({ id: podId, ...podFieldsFrom(values) }, { root, onProgress });
  let started = false;
  const listeners: PortListener[] = [];
  try {
    await startPod(podId, { root, onProgress });
    started = true;
    await createContainer(podId, container, { root, onProgress });
    // Published ports go over the agent channel (listenForward), not the pod's network: they
    // work in every network mode. The container shares the VM's network namespace, so its
    // port is the guest's 127.0.0.1:PORT.
    for (const m of published) {
      const listener = await listenForward(podId, { root, ...m });
      listeners.push(listener);
      process.stderr.write(`virtc: publishing ${hostPortName(listener.address, listener.port)} -> container port ${m.guestPort}\n`);
    }
    const tty = container.tty === true;
    const proc = await attachContainer(podId, 'main', {
      root, start: true, tty,
    });
    return await attachStdio(proc, tty);
  } finally {
    await Promise.all(listeners.map((l) => l.close()));
    if (started) await stopPod(podId, { root }).catch((err: Error) => process.stderr.write(`virtc: stopping pod ${podId}: ${err.message}\n`));
    if (values.rm) await deletePod(podId, { root }).catch((err: Error) => process.stderr.write(`virtc: deleting pod ${podId}: ${err.message}\n`));
    else process.stderr.write(`virtc: pod ${podId} kept (stopped); remove it with: virtc pod delete --id ${podId}\n`);
  }
}
