// The dependency rule of DESIGN.md §3, checked on the sources: `shim/cli → api →
// hypervisor/agent/guest/network/host/store → native.ts`, everything may import `model/`, and
// nothing imports upward. `errors.ts` (the public error family), `crash-points.ts` (test-only
// fault injection) and `oci/` (OCI tables, defaults and compilers: pure data) sit at the bottom
// with `model/`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { packageRoot } from '../../src/native.js';

const srcDir = join(packageRoot, 'src');

/** Higher layers may import lower ones and their own folder; the same rank is one layer. */
const layerRank: Record<string, number> = {
  model: 0, oci: 0, 'errors.ts': 0, 'crash-points.ts': 0, 'step-timing.ts': 0,
  'native.ts': 1,
  hypervisor: 2, agent: 2, guest: 2, network: 2, host: 2, store: 2,
  api: 3,
  cli: 4, shim: 4, 'oci-runtime': 4, 'index.ts': 4,
};

/** The layer of a path under src/: its first component (a folder, or a file at the top). */
function layerOf(file: string): string {
  return relative(srcDir, file).split('/')[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative module specifiers of `import … from`, `export … from` and `import('…')`. */
export function relativeImports(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) found.push(match[1]!);
  return found;
}

/** Every import that runs against the rule, as "from -> to (why)". */
export function upwardImports(files: string[], read: (file: string) => string): string[] {
  const bad: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const fromRank = layerRank[from];
    if (fromRank === undefined) {
      bad.push(`${relative(srcDir, file)}: layer "${from}" is not in the rule (add it to layerRank and DESIGN.md §3)`);
      continue;
    }
    for (const spec of relativeImports(read(file))) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      const to = layerOf(target);
      const toRank = layerRank[to];
      if (to === from) continue;
      if (toRank === undefined || toRank > fromRank) {
        bad.push(`${relative(srcDir, file)} -> ${relative(srcDir, target)} (${from} may not import ${to})`);
      }
    }
  }
  return bad;
}

test('no import in src/ runs upward', () => {
  const files = sourceFiles(srcDir);
  assert.ok(files.length > 50, `found only ${files.length} files under ${srcDir}`);
  const bad = upwardImports(files, (file) => readFileSync(file, 'utf8'));
  assert.equal(bad, [], `imports against DESIGN.md §3:\n  ${bad.join('\n  ')}`);
});

test('the check sees an upward import', () => {
  const store = join(srcDir, 'store', 'x.ts');
  const model = join(srcDir, 'model', 'y.ts');
  const sources: Record<string, string> = {
    [store]: "import type { PodConfig } from '../api/config.js';\nimport { VcError } from '../errors.js';",
    [model]: "export { native } from '../native.js';",
  };
  assert.equal(upwardImports([store, model], (f) => sources[f]!), [
    'store/x.ts -> api/config.ts (store may not import api)',
    'model/y.ts -> native.ts (model may not import native.ts)',
  ]);
});

test.run();
