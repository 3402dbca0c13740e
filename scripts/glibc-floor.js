// The oldest glibc the prebuilt addon runs on, shared by the step that checks the prebuilds
// (scripts/package/prebuilt.ts) and the install step that decides whether they fit a host
// (scripts/install.js). Plain JavaScript: install runs before anything is compiled.

/** The newest glibc symbol version the addon may require (the oldest glibc it runs on). */
export const GLIBC_FLOOR = '2.34';

/**
 * Numerically compares dotted versions ("2.34" vs "2.4"): negative, 0 or positive.
 * @param {string} a
 * @param {string} b
 * @returns {number}
 */
export function compareVersions(a, b) {
  const pa = a.split('.').map(Number), pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
