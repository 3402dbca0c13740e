// Where a call's time goes: each step a call reaches (its crash points, and a few steps marked for
// timing only) is published on the diagnostics channel STEP_CHANNEL as a StepEvent, for whoever
// subscribes — the bench's templates section, or a user profiling a slow start. Without a
// subscriber a step costs one check, so the marks can stay in the hot path.
import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

export const STEP_CHANNEL = 'virtcontainers:step';

export interface StepEvent {
  /** The call: startPod, stopPod, … (CrashOp). */
  op: string;
  /** The pod (or template, container) the call is about; '' where the call did not say. */
  id: string;
  step: string;
  /** performance.now() when the step was reached. */
  at: number;
}

const steps = channel(STEP_CHANNEL);

export function publishStep(op: string, id: string, step: string): void {
  if (!steps.hasSubscribers) return;
  const event: StepEvent = { op, id, step, at: performance.now() };
  steps.publish(event);
}
