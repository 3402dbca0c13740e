// The targets and how a measurement is judged against them.

export interface TargetSpec {
  description: string;
  unit: string;
  /** '<=': smaller is better and must not exceed `target`; '>=': larger is better. */
  op: '<=' | '>=';
  target: number;
}

export interface TargetResult extends TargetSpec {
  measured: number | null;
  /** null when the run could not decide (not measured, or the mode's limit stopped short of the target). */
  met: boolean | null;
  /** How far from the target, in `unit` (0 when met, null when undecided). */
  missedBy: number | null;
  /** How many times off: measured / target for '<=', target / measured for '>=' (1 or less when met). */
  missedFactor: number | null;
  note?: string;
}

export const TARGETS = {
  firstInstructionInprocessMs: {
    description: 'first guest instruction, built-in VMM in-process (addon Vm)',
    unit: 'ms', op: '<=', target: 1,
  },
  firstInstructionProcessMs: {
    description: 'first guest instruction, built-in VMM as a process (spawn → first exit)',
    unit: 'ms', op: '<=', target: 5,
  },
  speedupVsQemu: {
    description: 'QEMU ÷ built-in process, first guest instruction, same guest',
    unit: '×', op: '>=', target: 20,
  },
  overheadPerVmMiB: {
    description: 'built-in VMM memory beyond guest RAM per VM (RSS)',
    unit: 'MiB', op: '<=', target: 3,
  },
  overheadVsQemu: {
    description: "built-in VMM overhead ÷ QEMU's (RSS beyond guest RAM, same guest and memory)",
    unit: 'ratio', op: '<=', target: 0.1,
  },
  vmsPerSecond: {
    description: 'VMs created per second on this host (concurrent vc-vmm processes to first guest exit)',
    unit: 'VMs/s', op: '>=', target: 500,
  },
  maxConcurrentVms: {
    description: 'test-guest VMs held at once',
    unit: 'VMs', op: '>=', target: 1000,
  },
} as const satisfies Record<string, TargetSpec>;

export type TargetId = keyof typeof TARGETS;

export function evaluateTarget(
  spec: TargetSpec,
  measured: number | null | undefined,
  opts: { inconclusive?: boolean; note?: string } = {},
): TargetResult {
  const base = { description: spec.description, unit: spec.unit, op: spec.op, target: spec.target };
  const note = opts.note ? { note: opts.note } : {};
  if (measured === null || measured === undefined || !Number.isFinite(measured))
    return { ...base, measured: null, met: null, missedBy: null, missedFactor: null, ...note };
  const met = spec.op === '<=' ? measured <= spec.target : measured >= spec.target;
  const gap = spec.op === '<=' ? measured - spec.target : spec.target - measured;
  const factor = spec.op === '<=' ? measured / spec.target : measured === 0 ? Number.POSITIVE_INFINITY : spec.target / measured;
  if (opts.inconclusive && !met)
    return { ...base, measured, met: null, missedBy: null, missedFactor: null, ...note };
  return {
    ...base,
    measured,
    met,
    missedBy: met ? 0 : roundSig(gap),
    missedFactor: Number.isFinite(factor) ? roundSig(factor) : null,
    ...note,
  };
}

/** Rounds to 3 significant digits (enough for a benchmark figure, stable in JSON). */
export function roundSig(v: number, digits = 3): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const p = 10 ** (digits - 1 - Math.floor(Math.log10(Math.abs(v))));
  return Math.round(v * p) / p;
}
