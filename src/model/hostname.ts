// Host names of pods and containers: what a config may give, and the one rule that derives a name
// from an id when it gives none.

/** An RFC 1123 label: letters, digits and inner hyphens, 1-63 characters. */
export const HOSTNAME_PATTERN = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/**
 * The host name of a pod or container without one in its config. The rule is the one containers
 * used (api/container-spec.ts): every character a host name cannot hold becomes '-', hyphens at
 * the ends go. Pods used to keep those end hyphens ("a_" named its guest "a-", which is not a valid
 * host name); containers now cut to 63 characters before trimming, not after, so a cut cannot end
 * on a hyphen either. Ids start with a letter or digit, so the fallback is only for safety.
 */
export function hostnameFromId(id: string): string {
  return id.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 63).replace(/^-+|-+$/g, '') || 'localhost';
}
