/** `kill`'s signal argument as runc takes it: a number, or a name with or without SIG. */
import { constants } from 'node:os';
import { UsageError } from './args.js';

const SIGNALS = constants.signals as Record<string, number>;

export function parseSignal(text: string | undefined): number {
  if (text === undefined) return SIGNALS.SIGTERM!;
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`;
    const n = SIGNALS[name];
    if (n !== undefined) return n;
  }
  throw new UsageError(`kill: unknown signal ${JSON.stringify(text)} (a name such as TERM or SIGKILL, or a number 1-64)`);
}
