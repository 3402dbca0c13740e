/**
 * `update`'s input: an OCI LinuxResources JSON (`--resources FILE`, `-` for stdin) and/or runc's
 * single-value flags, merged into one resources object (the flags win), which the daemon turns
 * into limits with the same translation as config.json's linux.resources.
 */
import { readFileSync } from 'node:fs';
import { UsageError, type FlagValues } from './args.js';

const SIZE = /^([0-9]+)([kKmMgGtT]?)[bB]?$/;
const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

function bytes(flag: string, text: string): number {
  if (text === '-1') return -1;
  const m = SIZE.exec(text);
  if (!m) throw new UsageError(`update: flag --${flag}: expected a size such as 536870912 or 512m, got ${JSON.stringify(text)}`);
  return Number(m[1]) * UNIT[m[2]!.toLowerCase()]!;
}

function integer(flag: string, text: string): number {
  if (!/^-?[0-9]+$/.test(text)) throw new UsageError(`update: flag --${flag}: expected an integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

export function updateResources(flags: FlagValues, stdin: () => string = () => readFileSync(0, 'utf8')): Record<string, unknown> {
  let resources: Record<string, unknown> = {};
  const file = flags.resources as string | undefined;
  if (file) {
    const text = file === '-' ? stdin() : readFileSync(file, 'utf8');
    try {
      resources = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`update: --resources ${file}: not JSON: ${(err as Error).message}`);
    }
    if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) throw new UsageError(`update: --resources ${file}: expected a JSON object`);
  }
  const memory = { ...(resources.memory as object | undefined) } as Record<string, number>;
  const cpu = { ...(resources.cpu as object | undefined) } as Record<string, number | string>;
  const str = (name: string): string | undefined => flags[name] as string | undefined;
  if (str('memory')) memory.limit = bytes('memory', str('memory')!);
  if (str('memory-reservation')) memory.reservation = bytes('memory-reservation', str('memory-reservation')!);
  if (str('memory-swap')) memory.swap = bytes('memory-swap', str('memory-swap')!);
  if (str('kernel-memory')) memory.kernel = bytes('kernel-memory', str('kernel-memory')!);
  if (str('cpu-quota')) cpu.quota = integer('cpu-quota', str('cpu-quota')!);
  if (str('cpu-period')) cpu.period = integer('cpu-period', str('cpu-period')!);
  if (str('cpu-share')) cpu.shares = integer('cpu-share', str('cpu-share')!);
  if (str('cpuset-cpus')) cpu.cpus = str('cpuset-cpus')!;
  if (str('cpuset-mems')) cpu.mems = str('cpuset-mems')!;
  if (Object.keys(memory).length) resources.memory = memory;
  if (Object.keys(cpu).length) resources.cpu = cpu;
  if (str('pids-limit')) resources.pids = { limit: integer('pids-limit', str('pids-limit')!) };
  if (Object.keys(resources).length === 0) throw new UsageError('update: nothing to update (give --resources FILE or a flag such as --memory)');
  return resources;
}
