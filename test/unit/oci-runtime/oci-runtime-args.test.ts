// virtc-runtime's command line as conmon and containerd's runc shim write it, and its refusals:
// every unknown flag, command or value is an error naming it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkContainerId, DEFAULT_ROOT, parseArgs, UsageError } from '../../../src/oci-runtime/args.js';
import { parseSignal } from '../../../src/oci-runtime/signals.js';
import { updateResources } from '../../../src/oci-runtime/update-resources.js';

test('conmon\'s create line: global flags, then create with its flags, the id last', () => {
  const p = parseArgs(['--log-format=json', '--log', '/run/x/oci-log', '--systemd-cgroup', 'create', '--bundle', '/b', '--pid-file', '/run/x/pidfile', '--no-pivot', '--console-socket', '/tmp/conmon-term.1', 'abc']);
  assert.equal(p.global.logFormat, 'json');
  assert.equal(p.global.log, '/run/x/oci-log');
  assert.ok(p.global.systemdCgroup);
  assert.equal(p.global.root, DEFAULT_ROOT);
  assert.equal(p.command, 'create');
  assert.equal(p.flags, { bundle: '/b', 'pid-file': '/run/x/pidfile', 'no-pivot': true, 'console-socket': '/tmp/conmon-term.1' });
  assert.equal(p.args, ['abc']);
});

test('containerd\'s runc shim line and single-dash Go spellings', () => {
  const p = parseArgs(['--root', '/run/containerd/runc/default', '--log', '/b/log.json', '--log-format', 'json', 'create', '-b', '/b', '-pid-file=/b/init.pid', 'id1']);
  assert.equal([p.global.root, p.command, p.flags.bundle, p.flags['pid-file'], p.args[0]], ['/run/containerd/runc/default', 'create', '/b', '/b/init.pid', 'id1']);
});

test('exec: flags stop at the id, the rest is the command (its own dashes included); --env repeats', () => {
  const p = parseArgs(['exec', '-t', '--env', 'A=1', '-e', 'B=2', '--cwd', '/tmp', 'c1', 'ls', '-l', '--all']);
  assert.equal(p.flags, { tty: true, env: ['A=1', 'B=2'], cwd: '/tmp' });
  assert.equal(p.args, ['c1', 'ls', '-l', '--all']);
  const q = parseArgs(['exec', '--pid-file', '/p', '--process', '/proc.json', '--detach', 'c1']);
  assert.equal([q.flags.process, q.flags.detach, q.args], ['/proc.json', true, ['c1']]);
  const r = parseArgs(['exec', '-d', '--', 'c1', '-x']);
  assert.equal(r.args, ['c1', '-x']);
});

test('kill, delete, ps, update and version forms', () => {
  assert.equal(parseArgs(['kill', '--all', 'c', 'KILL']).flags.all, true);
  assert.equal(parseArgs(['kill', 'c', '9']).args, ['c', '9']);
  assert.equal(parseArgs(['delete', '-f', 'c']).flags.force, true);
  assert.equal(parseArgs(['delete', '--force=false', 'c']).flags.force, false);
  assert.equal(parseArgs(['ps', '--format', 'json', 'c']).flags.format, 'json');
  assert.ok(parseArgs(['-v']).global.version);
  assert.ok(parseArgs(['--version']).global.version);
});

test('unknown flags, commands and bad values are errors naming them', () => {
  const fails = (argv: string[], re: RegExp) => assert.throws(() => parseArgs(argv), (e: Error) => e instanceof UsageError && re.test(e.message), argv.join(' '));
  fails(['--criu', 'x', 'state', 'c'], /^unknown flag "--criu"$/);
  fails(['create', '--preserve-fds', '3', 'c'], /^create: unknown flag "--preserve-fds"$/);
  fails(['create', '--bogus=1', 'c'], /^create: unknown flag "--bogus"$/);
  fails(['checkpoint', 'c'], /^unknown command "checkpoint"$/);
  fails(['--log-format', 'xml', 'state', 'c'], /--log-format: expected text or json, got "xml"/);
  fails(['create', '--bundle'], /create: flag --bundle needs a value/);
  fails(['delete', '--force=maybe', 'c'], /delete: flag --force: expected true or false, got "maybe"/);
  fails(['state'], /state: the container id is required/);
  fails(['state', 'a', 'b'], /state: unexpected argument "b"/);
  fails([], /a command is required/);
});

test('an error after the global flags were read carries them (its --log gets the error too)', () => {
  try {
    parseArgs(['--log', '/x/log.json', '--log-format', 'json', 'create', '--frob', 'c']);
    assert.unreachable('parsed');
  } catch (err) {
    assert.equal([(err as UsageError).global?.log, (err as UsageError).global?.logFormat], ['/x/log.json', 'json']);
  }
});

test('container ids: runc\'s characters; path tricks refused by name', () => {
  assert.equal(checkContainerId('a'.repeat(64)), 'a'.repeat(64));
  assert.equal(checkContainerId('web_1.x+y-z'), 'web_1.x+y-z');
  for (const bad of ['', '..', 'a/b', 'a b', 'x'.repeat(129)]) {
    assert.throws(() => checkContainerId(bad), new RegExp(`invalid container id ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  }
});

test('kill signals: names with or without SIG, numbers, SIGTERM by default', () => {
  assert.equal(parseSignal(undefined), 15);
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('SIGKILL'), 9);
  assert.equal(parseSignal('sigusr1'), 10);
  assert.equal(parseSignal('2'), 2);
  assert.throws(() => parseSignal('SIGFOO'), /unknown signal "SIGFOO"/);
  assert.throws(() => parseSignal('0'), /unknown signal "0"/);
  assert.throws(() => parseSignal('65'), /unknown signal "65"/);
});

test('update: --resources JSON and runc\'s single flags merge into one resources object', () => {
  const r = updateResources(parseArgs(['update', '-r', '-', '--memory', '512m', '--cpu-quota', '50000', '--pids-limit', '100', 'c']).flags, () => '{"cpu":{"period":100000}}');
  assert.equal(r, { cpu: { period: 100000, quota: 50000 }, memory: { limit: 512 * 1024 * 1024 }, pids: { limit: 100 } });
  assert.throws(() => updateResources(parseArgs(['update', '--memory', 'lots', 'c']).flags), /--memory: expected a size .*got "lots"/);
  assert.throws(() => updateResources(parseArgs(['update', 'c']).flags), /nothing to update/);
  assert.throws(() => updateResources(parseArgs(['update', '-r', '-', 'c']).flags, () => '[1]'), /expected a JSON object/);
});

test.run();
