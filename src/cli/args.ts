// Argument parsing shared by virtc's commands: node:util parseArgs plus the global options.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  readonly code = 'USAGE';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export const globalOptions = {
  root: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export interface ParsedCommand {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** An option as node:util parseArgs takes it, plus its part of the usage text (none: not shown). */
export type OptionSpec = Options[string] & { usage?: string };

/**
 * One virtc command: the words after `virtc`, the options it parses and, from the same entries,
 * its usage text, so the two cannot drift. `words` may name several verbs that share the options
 * ('pod start|stop'); `tail` is what follows the options ('-- CMD [ARG...]').
 */
export interface CommandSpec {
  words: string;
  options: Record<string, OptionSpec>;
  tail?: string;
}

function usageParts(spec: CommandSpec, words: string): string[] {
  const parts = Object.values(spec.options).flatMap((o) => (o.usage ? [o.usage] : []));
  return ['virtc', words, ...parts, ...(spec.tail ? [spec.tail] : [])];
}

/** The one-line usage of a command; `words` narrows a group to the verb that was given. */
export function commandUsage(spec: CommandSpec, words = spec.words): string {
  return usageParts(spec, words).join(' ');
}

/** The usage of several commands for `virtc --help`: one per line, long ones wrapped and indented. */
export function usageOverview(specs: readonly CommandSpec[], width = 100): string {
  return specs.map((spec) => {
    const lines: string[] = [];
    for (const part of usageParts(spec, spec.words)) {
      const last = lines.length - 1;
      if (last >= 0 && lines[last]!.length + 1 + part.length <= width) lines[last] += ` ${part}`;
      else lines.push(lines.length === 0 ? part : `${' '.repeat(17)}${part}`);
    }
    return lines.join('\n');
  }).join('\n  ');
}

/** Parses `argv` with the command's options; errors show the command's usage. */
export function parseSpec(argv: string[], spec: CommandSpec, words = spec.words): ParsedCommand & { usage: string } {
  const usage = commandUsage(spec, words);
  const options = Object.fromEntries(Object.entries(spec.options).map(([name, { usage: _, ...option }]) => [name, option])) as Options;
  return { ...parseCommand(argv, options, usage), usage };
}

export function parseCommand(argv: string[], options: Options, usage: string): ParsedCommand {
  try {
    return parseArgs({ args: argv, options: { ...globalOptions, ...options }, allowPositionals: true, strict: true }) as ParsedCommand;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

export function requireString(value: unknown, flag: string, usage: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required\nusage: ${usage}`);
  return value;
}

/** An integer flag: the error names the flag and the value it got. */
export function optionalInt(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag}: expected a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

export function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
