// A pod's network as one record and two calls, for the pod lifecycle (docs/lifecycle.md): write
// `planPodNetwork(…)` into the pod's record (the step's `creates`) BEFORE `setUpPodNetwork(plan)`;
// keep the returned interfaces (and the CNI result) in the record; `tearDownPodNetwork(plan)` at
// stop, delete, a start's undo, reap and force-delete — it undoes any prefix of the set-up and is
// idempotent, so it is also what settles a step whose caller died.
//
// Modes (issue 13): `none` (nothing on the host), `netns` (the caller's namespace: taps and tc
// filters made and removed in it, the namespace itself left alone), `bridge` (our own namespace
// `<podDir>/netns`, CNI ADD/DEL with the default conflist or the caller's).
import type { PodNetworkMode, PodNetworkPlan, PodNetworkResult } from '../model/network.js';
export type { PodNetworkMode, PodNetworkPlan, PodNetworkResult } from '../model/network.js';
import { VcError } from '../errors.js';
import type { StepHook } from '../crash-points.js';
import { cniAdd, cniDel, DEFAULT_CNI_PLUGIN_DIRS, findPlugin, planAttachment, type CniAttachment, type CniConflist, type CniResult, type CniRuntime } from './cni.js';
import { defaultConflist, ipamDataDir } from './default-conflist.js';
import { missingProgram } from './exec.js';
import { createNetns, givenNetns, planPodNetns, removeNetns, type NetnsPlan } from './netns.js';
import { createTaps, removeTaps, type PodInterface, type TapPlan } from './tap.js';

export interface PlanOptions {
  root: string;
  podId: string;
  podDir: string;
  network: PodNetworkMode;
  hostNetns?: string;
}

/** Pure: what the set-up will make and the teardown will remove. */
export function planPodNetwork(options: PlanOptions): PodNetworkPlan {
  const { network } = options;
  const base = { version: 1 as const, ...(options.hostNetns !== undefined ? { hostNetns: options.hostNetns } : {}) };
  switch (network.mode) {
    case 'none':
      return { ...base, mode: 'none' };
    case 'netns': {
      const netns = givenNetns(network.path);
      return { ...base, mode: 'netns', netns, taps: { netns: netns.path } };
    }
    case 'bridge': {
      const netns = planPodNetns(options.podDir);
      const conflist = network.conflist ?? defaultConflist({ dataDir: ipamDataDir(options.root) });
      return { ...base, mode: 'bridge', netns, cni: planAttachment(options.podId, netns.path, conflist), taps: { netns: netns.path } };
    }
    default:
      throw new VcError('INVALID_CONFIG', `network mode ${JSON.stringify((network as { mode: unknown }).mode)}: none, netns or bridge`);
  }
}

/**
 * Throws NETWORK_UNAVAILABLE, naming the program or plugin and its package, when this host lacks
 * something the plan's set-up or teardown runs. Called before the plan is recorded: a start that
 * would fail for a missing tool must not leave a step whose undo needs that same tool.
 */
export async function checkPodNetworkHost(plan: PodNetworkPlan, runtime: Pick<CniRuntime, 'pluginDirs'> = {}): Promise<void> {
  if (plan.mode === 'none') return;
  // QEMU is started in the namespace under nsenter (vc-vmm joins it itself); the namespace, its taps
  // and their redirects are the addon's (rtnetlink), so iproute2 is not needed.
  const programs = ['nsenter'];
  for (const program of programs) {
    const missing = missingProgram(program, process.env.PATH);
    if (missing) throw missing;
  }
  for (const plugin of plan.cni?.conflist.plugins ?? []) await findPlugin(plugin.type, runtime.pluginDirs ?? DEFAULT_CNI_PLUGIN_DIRS);
}

/**
 * Makes what the plan names: the namespace (bridge), CNI ADD (bridge), the taps and tc filters
 * (bridge, netns). `step` is told when each part is made (netns-made, cni-added, taps-made): timing.
 */
export async function setUpPodNetwork(plan: PodNetworkPlan, runtime: Omit<CniRuntime, 'hostNetns'> & { step?: StepHook } = {}): Promise<PodNetworkResult> {
  if (plan.mode === 'none') return { interfaces: [] };
  const { step, ...cni } = runtime;
  const signal = runtime.signal;
  if (plan.netns) {
    await createNetns(plan.netns);
    step?.('netns-made');
  }
  let cniResult: CniResult | undefined;
  if (plan.cni) {
    cniResult = await cniAdd(plan.cni, { ...cni, ...(plan.hostNetns !== undefined ? { hostNetns: plan.hostNetns } : {}) });
    step?.('cni-added');
  }
  const interfaces = plan.taps ? await createTaps(plan.taps, { signal }) : [];
  if (plan.taps) step?.('taps-made');
  return cniResult ? { interfaces, cniResult } : { interfaces };
}

/**
 * Removes what the plan names, whatever part of the set-up ran: taps and filters, CNI DEL (with
 * the ADD's result when known), the namespace (owned only). Every part runs even when an earlier
 * one failed; the first failure is thrown at the end. Idempotent.
 */
export async function tearDownPodNetwork(plan: PodNetworkPlan, options: Omit<CniRuntime, 'hostNetns' | 'signal'> & { prevResult?: CniResult } = {}): Promise<void> {
  const errors: unknown[] = [];
  const attempt = async (part: () => Promise<void>): Promise<void> => {
    try {
      await part();
    } catch (err) {
      errors.push(err);
    }
  };
  if (plan.taps) await attempt(() => removeTaps(plan.taps!));
  if (plan.cni) await attempt(() => cniDel(plan.cni!, { ...options, ...(plan.hostNetns !== undefined ? { hostNetns: plan.hostNetns } : {}) }));
  if (plan.netns) await attempt(() => removeNetns(plan.netns!));
  if (errors.length > 0) throw errors[0];
}
