/** `--version` and the OCI version this runtime speaks (the features document: features-document.ts). */
import { readFileSync } from 'node:fs';

export const OCI_VERSION = '1.0.2';

export function runtimeVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function versionText(): string {
  return `virtc-runtime version ${runtimeVersion()}\nspec: ${OCI_VERSION}\n`;
}
