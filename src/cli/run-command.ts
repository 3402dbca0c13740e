// `virtc run`: a pod with one container, its stdio here, its exit code as ours. Without --rm the
// stopped pod is kept for inspection; with --rm nothing is left.
import { randomBytes } from 'node:crypto';
import { createPod, deletePod, startPod, stopPod } from '../api/pod.js';
import { createContainer } from '../api/container.js';
import { attachContainer } from '../api/container-process.js';
import { optionalInt, optionalString, parseSpec, usageOverview, type CommandSpec } from './args.js';
import { containerConfigFrom, containerOptions } from './container-commands.js';
import { podFieldsFrom, podOptions } from './pod-commands.js';
import { progressReporter } from './progress.js';
import { attachStdio } from './stdio.js';

const run = {
  words: 'run',
  options: { ...podOptions, name: { type: 'string', usage: '[--name ID]' }, rm: { type: 'boolean', usage: '[--rm]' }, ...containerOptions },
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
  await createPod({ id: podId, ...podFieldsFrom(values) }, { root, onProgress });
  let started = false;
  try {
    await startPod(podId, { root, onProgress });
    started = true;
    await createContainer(podId, container, { root, onProgress });
    const tty = container.tty === true;
    const proc = await attachContainer(podId, 'main', {
      root, start: true, tty,
    });
    return await attachStdio(proc, tty);
  } finally {
    if (started) await stopPod(podId, { root }).catch((err: Error) => process.stderr.write(`virtc: stopping pod ${podId}: ${err.message}\n`));
    if (values.rm) await deletePod(podId, { root }).catch((err: Error) => process.stderr.write(`virtc: deleting pod ${podId}: ${err.message}\n`));
    else process.stderr.write(`virtc: pod ${podId} kept (stopped); remove it with: virtc pod delete --id ${podId}\n`);
  }
}
