// `virtc run`: a pod with one container, its stdio here, its exit code as ours. Without --rm the
// stopped pod is kept for inspection; with --rm nothing is left. With -d the container is started
// unattached, the pod's id printed and the pod left running.
import { randomBytes } from 'node:crypto';
import { createPod, deletePod, startPod, stopPod } from '../api/pod.js';
import { createContainer, startContainer } from '../api/container.js';
import { attachContainer } from '../api/container-process.js';
import { POD_ID_PATTERN } from '../model/pod-config.js';
import { optionalString, parseSpec, stringList, usageOverview, UsageError, type CommandSpec } from './args.js';
import { containerConfigFrom, containerOptions } from './container-commands.js';
import { podFieldsFrom, podOptions } from './pod-commands.js';
import { parseMapping } from './port-forward-command.js';
import { hostPortName, listenForward, type PortListener } from '../api/port-listen.js';
import { progressReporter } from './progress.js';
import { attachStdio } from './stdio.js';

const run = {
  words: 'run',
  options: {
    ...podOptions, template: { type: 'string', usage: '[--template NAME]' }, name: { type: 'string', usage: '[--name NAME]' }, rm: { type: 'boolean', usage: '[--rm | -d|--detach]' },
    detach: { type: 'boolean', short: 'd' },
    publish: { type: 'string', short: 'p', multiple: true, usage: '[-p [HOSTADDR:]HOSTPORT:CONTAINERPORT]...' },
    ...containerOptions,
  },
  tail: '[-- CMD ARG...]',
} satisfies CommandSpec;

export const runUsage = usageOverview([run]);

/** What `virtc run` will do, from its arguments: every flag is checked here, before a pod is made. */
export function runPlan(argv: string[]) {
  const parsed = parseSpec(argv, run);
  const { values } = parsed;
  const name = optionalString(values.name);
  if (name !== undefined && !POD_ID_PATTERN.test(name)) {
    throw new UsageError(`--name: ${JSON.stringify(name)} is not a pod id (1-63 letters, digits, _ . - starting with a letter or digit)`);
  }
  const detach = values.detach === true;
  if (detach && values.rm) {
    throw new UsageError(`-d and --rm cannot be combined: a detached pod outlives this command; remove it with virtc pod delete --force --id ID\nusage: ${parsed.usage}`);
  }
  const published = stringList(values.publish).map(parseMapping);
  if (detach && published.length) {
    throw new UsageError(`-p cannot be combined with -d: published ports live in this command's process; forward a detached pod's with virtc pod port-forward --id ID [HOSTADDR:]HOSTPORT:CONTAINERPORT\nusage: ${parsed.usage}`);
  }
  return {
    podId: name ?? `run-${randomBytes(4).toString('hex')}`,
    pod: { ...podFieldsFrom(values), template: optionalString(values.template) } as Record<string, unknown>,
    container: containerConfigFrom('main', parsed),
    published,
    detach,
    rm: values.rm === true,
    root: optionalString(values.root),
  };
}

export async function runCommand(argv: string[]): Promise<number> {
  const { podId, pod, container, published, detach, rm, root } = runPlan(argv);
  const onProgress = progressReporter();
  await createPod({ id: podId, ...pod }, { root, onProgress });
  let started = false;
  let leftRunning = false;
  const listeners: PortListener[] = [];
  try {
    await startPod(podId, { root, onProgress });
    started = true;
    await createContainer(podId, container, { root, onProgress });
    if (detach) {
      await startContainer(podId, 'main', { root });
      leftRunning = true;
      console.log(podId);
      process.stderr.write(`virtc: pod ${podId} running container main; stop and remove it with: virtc pod delete --force --id ${podId}\n`);
      return 0;
    }
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
    if (!leftRunning) {
      if (started) await stopPod(podId, { root }).catch((err: Error) => process.stderr.write(`virtc: stopping pod ${podId}: ${err.message}\n`));
      if (rm) await deletePod(podId, { root }).catch((err: Error) => process.stderr.write(`virtc: deleting pod ${podId}: ${err.message}\n`));
      else process.stderr.write(`virtc: pod ${podId} kept (stopped); remove it with: virtc pod delete --id ${podId}\n`);
    }
  }
}
