// OCI hooks as virtc-runtime runs them on the host: the state on stdin, args (argv[0] included),
// exactly the hook's env, the timeout, failures that name the hook; hooks that would run inside
// the container are refused, never ignored. Real processes (/bin/sh), no stand-ins.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHook, runHooks, runHooksLogged, specHooks, type HookState } from '../../../src/oci-runtime/hooks.js';
import { parseSpec } from '../../../src/oci/spec.js';

const dir = mkdtempSync(join(tmpdir(), 'vc-hooks-'));
const script = join(dir, 'hook.sh');
// Records its argv[0] (as $0 cannot show it, through /proc), args, env and stdin.
writeFileSync(script, `#!/bin/sh
out="$1"; shift
tr '\\0' ' ' < /proc/$$/cmdline > "$out.cmdline"
env | sort > "$out.env"
cat > "$out.stdin"
echo "said $*" >&2
exit "\${HOOK_EXIT:-0}"
`);
chmodSync(script, 0o755);
const state: HookState = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 4242, bundle: '/b', annotations: { a: 'b' } };
const spec = (hooks: unknown) => parseSpec({ process: { args: ['sh'] }, hooks }, 'config.json');

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a hook gets the state on stdin, its args and only its env', async () => {
  const out = join(dir, 'one');
  await runHook('prestart', 0, { path: script, args: ['named-zero', out, 'x'], env: ['ONLY=this'] }, state);
  assert.equal(JSON.parse(readFileSync(`${out}.stdin`, 'utf8')), state);
  assert.match(readFileSync(`${out}.cmdline`, 'utf8'), new RegExp(`^/bin/sh ${script} ${out} x`));
  const env = readFileSync(`${out}.env`, 'utf8');
  assert.match(env, /^ONLY=this$/m);
  assert.not.match(env, /^HOME=/m);
});

test('a failing hook is an error naming it, with its output', async () => {
  const out = join(dir, 'two');
  const err = await runHook('createRuntime', 1, { path: script, args: [script, out, 'no'], env: ['HOOK_EXIT=3'] }, state).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, `hooks.createRuntime[1] (${script}): failed (exit code 3): said no`);
});

test('a hook past its timeout is killed and an error', async () => {
  const started = Date.now();
  const err = await runHook('prestart', 0, { path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }, state).catch((e: Error) => e);
  assert.match((err as Error).message, 'hooks.prestart[0] (/bin/sleep): timed out after 1 s');
  assert.ok(Date.now() - started < 10_000);
});

test('runHooks stops at the first failure; runHooksLogged goes on and logs', async () => {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const hooks = specHooks(spec({ prestart: [{ path: '/bin/false' }, { path: script, args: [script, a] }], poststop: [{ path: '/bin/false' }, { path: script, args: [script, b] }] }));
  assert.match(String(await runHooks(hooks, 'prestart', state).catch((e: Error) => e.message)), 'hooks.prestart[0] (/bin/false): failed (exit code 1)');
  assert.throws(() => readFileSync(`${a}.stdin`));
  const warnings: string[] = [];
  await runHooksLogged(hooks, 'poststop', { ...state, status: 'stopped' }, (m) => warnings.push(m));
  assert.equal(warnings, ['hooks.poststop[0] (/bin/false): failed (exit code 1)']);
  assert.equal(JSON.parse(readFileSync(`${b}.stdin`, 'utf8')).status, 'stopped');
});

test('hooks that would run inside the container, and bad hooks, are errors naming the field', () => {
  assert.throws(() => specHooks(spec({ createContainer: [{ path: '/bin/true' }] })), /hooks\.createContainer \(\/bin\/true\) is not supported/);
  assert.throws(() => specHooks(spec({ startContainer: [{ path: '/bin/true' }] })), /hooks\.startContainer/);
  assert.throws(() => specHooks(spec({ prestart: [{ path: 'relative' }] })), /hooks\.prestart\.0\.path: must be an absolute path/);
  assert.throws(() => specHooks(spec({ poststart: [{ path: '/x', timeout: 0 }] })), /hooks\.poststart\.0\.timeout/);
  assert.equal(specHooks(spec(undefined)), { prestart: [], createRuntime: [], poststart: [], poststop: [] });
});

test.run();
