// Test-only fault injection, for the crash-only tests (test/integration/crash-*.test.ts): with
// VC_TEST_CRASH_AT="<op>:<n>" in the environment, the process kills itself with SIGKILL when the
// n-th step of `op` is reached, after printing which step that is on stderr. Nothing else reads
// the variable; without it every step is a counter increment. Not for production use.
// Every step is also published for timing (step-timing.ts), as are the uncounted `mark`s.
import { publishStep } from './step-timing.js';

/** The API's calls, and virtc-runtime's `create` command (test/integration/oci-runtime-crash.test.ts). */
export type CrashOp = 'startPod' | 'stopPod' | 'deletePod' | 'createContainer' | 'runtimeCreate' | 'createTemplate';

const ENV = 'VC_TEST_CRASH_AT';

function target(): { op: string; step: number } | undefined {
  const spec = process.env[ENV];
  if (!spec) return undefined;
  const match = /^([A-Za-z]+):(\d+)$/.exec(spec);
  if (!match) throw new Error(`${ENV}: expected OP:N (e.g. startPod:3), got ${JSON.stringify(spec)}`);
  return { op: match[1]!, step: Number(match[2]) };
}

/** The steps of one call of `op`: `reach(name)` after each thing the call has made or changed. */
export class CrashPoints {
  private count = 0;

  constructor(readonly op: CrashOp, readonly id = '') {}

  reach(name: string): void {
    publishStep(this.op, this.id, name);
    this.count += 1;
    const wanted = target();
    if (!wanted || wanted.op !== this.op || wanted.step !== this.count) return;
    process.stderr.write(`virtcontainers: ${ENV}: killing process ${process.pid} at ${this.op} step ${this.count} (${name})\n`);
    process.kill(process.pid, 'SIGKILL');
  }

  /** A step for timing only: not counted, so the crash tests' step numbers stay as they are. */
  mark(name: string): void {
    publishStep(this.op, this.id, name);
  }
}

/** For code that takes an optional step callback. */
export type StepHook = (name: string) => void;
