// The one line of results a bench script run inside the nested harness's L1 prints on stdout
// (`BENCH-JSON {...}`), and how the host finds it among the progress lines. Pure; shared by the
// pod section (bench/pods-inside.ts) and the host sections (bench/hosts-inside.ts).

/** Starts the one line of results; anything else on the output is progress. */
export const BENCH_JSON_PREFIX = 'BENCH-JSON ';

export function benchJsonLine(report: unknown): string {
  return `${BENCH_JSON_PREFIX}${JSON.stringify(report)}\n`;
}

/**
 * The report in a script's output: the last line that starts with BENCH-JSON (a line may end in
 * \r; other lines are progress), parsed. Throws, quoting the output's tail, when there is none, it
 * is not JSON, or it is not an object with `version` 1.
 */
export function parseBenchJsonLine(output: string): Record<string, unknown> & { version: 1 } {
  const lines = output.split('\n').map((l) => l.replace(/\r$/, ''));
  const line = lines.filter((l) => l.startsWith(BENCH_JSON_PREFIX)).pop();
  const tail = () => lines.filter((l) => l.trim()).slice(-10).join('\n');
  const name = BENCH_JSON_PREFIX.trim();
  if (line === undefined) throw new Error(`no ${name} line in the output; its end:\n${tail()}`);
  let report: unknown;
  try {
    report = JSON.parse(line.slice(BENCH_JSON_PREFIX.length));
  } catch (err) {
    throw new Error(`the ${name} line is not JSON (${(err as Error).message}): ${line.slice(0, 200)}`);
  }
  if (!report || typeof report !== 'object' || Array.isArray(report) || (report as { version?: unknown }).version !== 1) {
    throw new Error(`the ${name} line is not a version-1 report: ${line.slice(0, 200)}`);
  }
  return report as Record<string, unknown> & { version: 1 };
}

/** Splits a stream of text chunks into whole lines (without their \n). */
export class LineSplitter {
  #rest = '';
  feed(chunk: string): string[] {
    const parts = (this.#rest + chunk).split('\n');
    this.#rest = parts.pop()!;
    return parts;
  }
  end(): string[] {
    const rest = this.#rest;
    this.#rest = '';
    return rest ? [rest] : [];
  }
}
