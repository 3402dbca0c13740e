// Connects a guest process to this terminal or these pipes, and turns its end into an exit code.
import type { PodProcess } from '../api/enter.js';
import { constants } from 'node:os';

export async function attachStdio(proc: PodProcess, tty: boolean): Promise<number> {
  const stdin = process.stdin;
  const rawMode = tty && stdin.isTTY;
  if (rawMode) stdin.setRawMode(true);
  const onResize = () => {
    if (process.stdout.rows && process.stdout.columns) void proc.resize(process.stdout.rows, process.stdout.columns).catch(() => {});
  };
  if (tty && process.stdout.isTTY) process.stdout.on('resize', onResize);
  stdin.pipe(proc.stdin);
  proc.stdin.on('error', () => {}); // the process may exit before reading all of its input
  proc.stdout.pipe(process.stdout, { end: false });
  proc.stderr.pipe(process.stderr, { end: false });
  try {
    const status = await proc.wait();
    if (status.signal) {
      const number = (constants.signals as Record<string, number>)[status.signal] ?? 0;
      return 128 + number;
    }
    return status.exitCode ?? 1;
  } finally {
    if (rawMode) stdin.setRawMode(false);
    stdin.unpipe(proc.stdin);
    stdin.pause();
    process.stdout.off('resize', onResize);
  }
}
