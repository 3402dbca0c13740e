// The measurement behind bench/templates.ts, through the public API, in a place whose /dev/kvm
// boots stock guests (the nested harness's L1 here): N pods cold-booted, then a template made and
// N pods started from it; each pod's start → agent ready, and with all N of a kind running and
// idle, each pod's PSS (its VMM process tree: pages shared between pods are split among them, which
// is what a template's shared memory file is for).
import { mkdtemp, rm, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPod, createTemplate, deletePod, deleteTemplate, podStatus, startPod, stopPod } from '../src/index.js';
import { teardownRoot } from '../test/helpers/pods.js';
import { treePssKiB } from './lib/proc-tree.js';
import { errorText } from './pod-measure.js';
import { startParts, type StartParts, type TemplatesInsideArgs, type TemplatesMeasurement } from './templates-format.js';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { STEP_CHANNEL, type StepEvent } from '../src/step-timing.js';

const TEMPLATE = 'bench';
/** After the last pod of a kind is up, before its memory is read: the guests settle to idle. */
const SETTLE_MS = 3000;

export async function measureTemplates(args: TemplatesInsideArgs, opts: { timeoutMs: number; onProgress: (m: string) => void }): Promise<TemplatesMeasurement> {
  const m: TemplatesMeasurement = { coldStartMs: [], warmStartMs: [], coldPssKiB: [], warmPssKiB: [], coldParts: [], warmParts: [], templateCreateMs: null, templateBytes: null };
  // Each start's steps (src/step-timing.ts), for where its time went.
  const steps: StepEvent[] = [];
  const onStep = (e: unknown) => steps.push(e as StepEvent);
  subscribe(STEP_CHANNEL, onStep);
  const timedStart = async (id: string, into: number[], parts: (StartParts | null)[]) => {
    steps.length = 0;
    const t0 = performance.now();
    await startPod(id, { ...call(), bootTimeoutMs: opts.timeoutMs });
    const t1 = performance.now();
    into.push(t1 - t0);
    parts.push(startParts(steps.filter((e) => e.op === 'startPod' && e.id === id), t0, t1));
    return parts.at(-1);
  };
  const partsText = (p: StartParts | null | undefined) => (p ? ` (${Object.entries(p).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')})` : '');
  const root = await mkdtemp('/tmp/vcbt-');
  const call = () => ({ root, signal: AbortSignal.timeout(opts.timeoutMs) });
  const config = { hypervisor: 'kvm' as const, memoryMiB: args.memoryMiB, vcpus: 1 };
  const running: string[] = [];
  const stopAll = async () => {
    for (const id of running.splice(0)) {
      await stopPod(id, { root, timeoutMs: 5000 }).catch(() => {});
      await deletePod(id, { root }).catch(() => {});
    }
  };
  const pssOfAll = async (ids: readonly string[], into: number[]) => {
    await sleep(SETTLE_MS);
    for (const id of ids) {
      const pid = (await podStatus(id, { root })).pid;
      if (!pid) throw new Error(`pod ${id} has no VMM process`);
      into.push(treePssKiB(pid));
    }
  };
  try {
    opts.onProgress('warm-up: one cold pod created and deleted (file caches)');
    await createPod({ id: 'warm-up', ...config }, call());
    await deletePod('warm-up', call());

    for (let i = 0; i < args.pods; i++) {
      const id = `cold${i}`;
      await createPod({ id, ...config }, call());
      running.push(id);
      const parts = await timedStart(id, m.coldStartMs, m.coldParts!);
      opts.onProgress(`cold pod ${i + 1}/${args.pods}: start → agent ready ${m.coldStartMs.at(-1)!.toFixed(0)} ms${partsText(parts)}`);
    }
    await pssOfAll(running, m.coldPssKiB);
    opts.onProgress(`cold pods: PSS per pod ${(m.coldPssKiB.reduce((a, b) => a + b, 0) / m.coldPssKiB.length / 1024).toFixed(1)} MiB`);
    await stopAll();

    const t0 = performance.now();
    await createTemplate({ name: TEMPLATE, ...config }, call());
    m.templateCreateMs = performance.now() - t0;
    m.templateBytes = await dirBytes(join(root, 'templates', TEMPLATE)).catch(() => null);
    opts.onProgress(`template made in ${m.templateCreateMs.toFixed(0)} ms`);

    for (let i = 0; i < args.pods; i++) {
      const id = `warm${i}`;
      await createPod({ id, template: TEMPLATE }, call());
      running.push(id);
      const parts = await timedStart(id, m.warmStartMs, m.warmParts!);
      opts.onProgress(`pod from the template ${i + 1}/${args.pods}: start → agent ready ${m.warmStartMs.at(-1)!.toFixed(0)} ms${partsText(parts)}`);
    }
    await pssOfAll(running, m.warmPssKiB);
    opts.onProgress(`pods from the template: PSS per pod ${(m.warmPssKiB.reduce((a, b) => a + b, 0) / m.warmPssKiB.length / 1024).toFixed(1)} MiB`);
    await stopAll();
    await deleteTemplate(TEMPLATE, { root });
  } catch (err) {
    m.error = errorText(err);
    opts.onProgress(`failed: ${m.error}`);
  } finally {
    unsubscribe(STEP_CHANNEL, onStep);
    await stopAll();
    await teardownRoot(root).catch(() => {});
    await rm(root, { recursive: true, force: true }).catch(() => {});
  }
  return m;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}
