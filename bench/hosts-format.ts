// The pure parts of running the host sections (vmm, memory, density) inside L1: the command line
// of bench/hosts-inside.ts and the check of the BENCH-JSON report it prints.
import { parseBenchJsonLine } from './lib/bench-json.js';
import type { DensitySection, HostInfo, MemorySection, VmmStartSection } from './lib/results.js';

export const HOST_SECTIONS = ['vmm', 'memory', 'density'] as const;
export type HostSection = (typeof HOST_SECTIONS)[number];

export interface HostsInsideArgs {
  full: boolean;
  sections: HostSection[];
}

export interface HostsInsideReport {
  version: 1;
  /** hostInfo() inside L1. */
  host: HostInfo;
  vmmStart: VmmStartSection;
  memory: MemorySection;
  density: DensitySection;
  errors: { section: string; message: string }[];
}

/** hosts-inside's argv: `[--full] --sections vmm,memory,density` (at least one section). */
export function parseHostsInsideArgs(argv: readonly string[]): HostsInsideArgs {
  const args: HostsInsideArgs = { full: false, sections: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--full') args.full = true;
    else if (a === '--sections') {
      const v = argv[++i];
      if (v === undefined || v === '') throw new Error(`--sections needs a comma-separated list of ${HOST_SECTIONS.join(', ')}`);
      for (const s of v.split(',')) {
        if (!(HOST_SECTIONS as readonly string[]).includes(s)) throw new Error(`--sections: unknown section ${JSON.stringify(s)} (host sections: ${HOST_SECTIONS.join(', ')})`);
        if (!args.sections.includes(s as HostSection)) args.sections.push(s as HostSection);
      }
    } else throw new Error(`unknown argument ${JSON.stringify(a)} (expected --full or --sections LIST)`);
  }
  if (args.sections.length === 0) throw new Error(`name at least one section with --sections (${HOST_SECTIONS.join(', ')})`);
  return args;
}

export function hostsInsideArgv(args: HostsInsideArgs): string[] {
  return [...(args.full ? ['--full'] : []), '--sections', args.sections.join(',')];
}

/**
 * The report in hosts-inside's output; throws, quoting the line, unless it is a version-1 report
 * with the three sections (objects that say where they ran), the inside host and an errors list.
 */
export function parseHostsReport(output: string): HostsInsideReport {
  const r = parseBenchJsonLine(output);
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const bad = (why: string) => new Error(`the BENCH-JSON line is not a host-sections report (${why}): ${JSON.stringify(r).slice(0, 200)}`);
  for (const key of ['vmmStart', 'memory', 'density'] as const) {
    if (!isObj(r[key])) throw bad(`no ${key} object`);
    const where = (r[key] as { where?: unknown }).where;
    if (where !== 'l0' && where !== 'l1' && where !== null) throw bad(`${key}.where is ${JSON.stringify(where)}`);
  }
  if (!isObj(r.host)) throw bad('no host object');
  if (!Array.isArray(r.errors)) throw bad('no errors list');
  return r as unknown as HostsInsideReport;
}
