// Small statistics for benchmark samples: nearest-rank percentiles, so every reported value is one
// that was actually measured (no interpolation between two runs).

export interface Summary {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile (p in 0..100) of the values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in 0..100, not ${p}`);
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** n, median, p95, min, max and mean of the finite values, rounded to `digits` decimals. */
export function summarize(values: readonly number[], digits = 3): Summary {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { n: 0, median: Number.NaN, p95: Number.NaN, min: Number.NaN, max: Number.NaN, mean: Number.NaN };
  return {
    n: finite.length,
    median: round(percentile(finite, 50), digits),
    p95: round(percentile(finite, 95), digits),
    min: round(Math.min(...finite), digits),
    max: round(Math.max(...finite), digits),
    mean: round(finite.reduce((a, b) => a + b, 0) / finite.length, digits),
  };
}

export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
