// The package's source fallback (scripts/install.js builds with node-gyp where no prebuilt binary
// fits) needs every file binding.gyp and its .gypi files name. The files npm would pack (`npm pack
// --dry-run`) are copied to a fresh directory, node-gyp configures them there, and make is asked,
// without building (`make -n`), whether every source of every target is at hand: a directory left
// out of package.json's `files` (as native/vmm/jail and native/vmm/seccomp once were) fails here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const nodeGyp = '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js';
const dir = tempDir('vc-srcpkg');
test.after(() => dir.remove());

function packedFiles(): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, `npm pack --dry-run: ${r.stderr}`);
  return (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
}

if (!existsSync(nodeGyp) || spawnSync('make', ['--version']).status !== 0) {
  test('source-build: skipped', () => console.log(`\nSKIP source-build: needs npm's bundled node-gyp (${nodeGyp}) and make`));
} else {
  test('the packed files configure with node-gyp and make finds every source of every target (make -n)', () => {
    const files = packedFiles();
    assert.ok(files.includes('binding.gyp'), 'binding.gyp is packed');
    const pkg = join(dir.path, 'package');
    for (const file of files) {
      mkdirSync(dirname(join(pkg, file)), { recursive: true });
      copyFileSync(join(root, file), join(pkg, file));
    }
    // node-addon-api's headers come from the package's dependencies, as in a user's node_modules.
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
    const configure = spawnSync(process.execPath, [nodeGyp, 'configure', '--nodedir=/usr'], { cwd: pkg, encoding: 'utf8', timeout: 120_000 });
    assert.is(configure.status, 0, `node-gyp configure in the packed tree: ${configure.stderr.slice(-2000)}`);
    const make = spawnSync('make', ['-n', '-C', 'build'], { cwd: pkg, encoding: 'utf8', timeout: 60_000 });
    assert.is(make.status, 0, `make -n in the packed tree (a source the package does not ship?): ${make.stderr.slice(-2000)}`);
    for (const target of ['vc_addon', 'vc-agent', 'vc-vmm', 'vc-holder']) {
      assert.match(make.stdout, new RegExp(`Release/(obj\\.target/)?${target}`), `make would build ${target}`);
    }
  });
}

test.run();
