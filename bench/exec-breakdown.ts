// Where an exec round trip's time goes (issue 18, item 1), for any hypervisor: the steps of
// enterPod timed one by one on the host (reading the pod's state, opening the agent channel with
// its hello, the exec request, the wait for EXIT), and the CPU time each party spent per exec over
// a batch: this process (the host client), the VMM process, and the guest (agent, kernel, the
// program) by its own /proc/stat.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connectAgent } from '../src/api/agent-link.js';
import { storeFor } from '../src/api/context.js';
import { runningPod } from '../src/api/pod-session.js';
import { enterPod } from '../src/index.js';
import { median, round } from './lib/stats.js';

export const EXEC_STEPS = ['hostState', 'channel', 'execRequest', 'exit'] as const;
export type ExecStep = (typeof EXEC_STEPS)[number];

export interface ExecBreakdown {
  execs: number;
  /** Median per step (ms), and the median of the steps' sum. */
  stepsP50Ms: Record<ExecStep | 'total', number>;
  /** CPU ms per exec, averaged over the batch. */
  cpuPerExecMs: {
    hostClient: number;
    vmmProcess: number;
    guest: number;
    /** vmmProcess − guest: the VMM's own work (its vCPU threads' time includes the guest's). */
    vmmOwn: number;
  };
}

/** One exec of `true` through the steps enterPod takes, each timed (ms). */
async function timedExec(id: string, root: string, signal: AbortSignal): Promise<Record<ExecStep, number>> {
  const t0 = performance.now();
  const pod = await runningPod(storeFor({ root }), id, { root, signal });
  const t1 = performance.now();
  const agent = await connectAgent(pod.hypervisor.agentEndpoint(pod.paths, pod.record.vmm), { timeoutMs: 30_000, signal });
  const t2 = performance.now();
  try {
    const proc = await agent.exec({ argv: ['true'] });
    const t3 = performance.now();
    proc.stdout.resume();
    proc.stderr.resume();
    const status = await proc.wait();
    const t4 = performance.now();
    if (status.exitCode !== 0) throw new Error(`true in pod ${id} ended with ${status.signal ?? `exit code ${status.exitCode}`}`);
    return { hostState: t1 - t0, channel: t2 - t1, execRequest: t3 - t2, exit: t4 - t3 };
  } finally {
    await agent.close();
  }
}

/** utime + stime of a process (all its threads), ms. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The guest's busy time from its /proc/stat (user + nice + system + irq + softirq), ms. */
async function guestBusyMs(id: string, root: string, signal: AbortSignal): Promise<number> {
  const proc = await enterPod(id, ['head', '-n', '1', '/proc/stat'], { root, signal });
  let text = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => { text += d; });
  proc.stderr.resume();
  await proc.wait();
  const f = text.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 7 || f.some((v) => !Number.isFinite(v))) throw new Error(`guest /proc/stat: unexpected first line ${JSON.stringify(text.slice(0, 120))}`);
  // USER_HZ is 100 on Linux x86.
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 10;
}

/**
 * `execs` timed execs of `true` in pod `id` (whose VMM is process `vmmPid`). The guest's CPU is
 * read just before and after the batch by two more execs, whose own share (their tail and head)
 * is counted in too: a small overestimate, spread over the batch.
 */
export async function execBreakdown(id: string, root: string, vmmPid: number, execs: number, timeoutMs: number): Promise<ExecBreakdown> {
  const signal = AbortSignal.timeout(timeoutMs);
  const samples: Record<ExecStep, number>[] = [];
  const guest0 = await guestBusyMs(id, root, signal);
  const vmm0 = processCpuMs(vmmPid);
  const self0 = selfCpuMs();
  for (let i = 0; i < execs; i++) samples.push(await timedExec(id, root, signal));
  const self1 = selfCpuMs();
  const vmm1 = processCpuMs(vmmPid);
  const guest1 = await guestBusyMs(id, root, signal);
  const steps = Object.fromEntries(EXEC_STEPS.map((s) => [s, round(median(samples.map((x) => x[s])), 2)])) as Record<ExecStep | 'total', number>;
  steps.total = round(median(samples.map((x) => EXEC_STEPS.reduce((sum, s) => sum + x[s], 0))), 2);
  const vmmProcess = (vmm1 - vmm0) / execs;
  const guest = (guest1 - guest0) / execs;
  return {
    execs,
    stepsP50Ms: steps,
    cpuPerExecMs: {
      hostClient: round((self1 - self0) / execs, 2),
      vmmProcess: round(vmmProcess, 2),
      guest: round(guest, 2),
      vmmOwn: round(Math.max(0, vmmProcess - guest), 2),
    },
  };
}
