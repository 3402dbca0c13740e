// Temporary directories for tests, short enough for Unix socket paths (108 bytes).
import { mkdtempSync, rmSync } from 'node:fs';

export function tempDir(prefix = 'vct', base = '/tmp'): { path: string; remove(): void } {
  const path = mkdtempSync(`${base}/${prefix}-`);
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
