import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { commandUsage, optionalInt, parseCommand, parseSpec, usageOverview, UsageError, type CommandSpec } from '../../../src/cli/args.js';
import { podUsage } from '../../../src/cli/pod-commands.js';
import { containerUsage } from '../../../src/cli/container-commands.js';
import { runUsage } from '../../../src/cli/run-command.js';
import { parseEnv } from '../../../src/cli/process-flags.js';
import { main } from '../../../src/cli/main.js';

test('--env pairs become a map; a pair without a name names the flag and value', () => {
  assert.equal(parseEnv(['A=1', 'B=x=y', 'C=']), { A: '1', B: 'x=y', C: '' });
  assert.throws(() => parseEnv(['=1']), (err: Error) => err instanceof UsageError && /-e\/--env: expected KEY=VALUE or KEY, got "=1"/.test(err.message));
});

test('integer flags accept whole numbers only', () => {
  assert.is(optionalInt('4', '--vcpus'), 4);
  assert.is(optionalInt(undefined, '--vcpus'), undefined);
  assert.throws(() => optionalInt('-1', '--vcpus'), /--vcpus: expected a whole number, got "-1"/);
});

test('arguments after -- belong to the guest command, even ones that look like flags', () => {
  const parsed = parseCommand(['--id', 'p', '--', 'ls', '--root', '-l'], { id: { type: 'string' } }, 'u');
  assert.is(parsed.values.id, 'p');
  assert.equal(parsed.positionals, ['ls', '--root', '-l']);
});

test('unknown flags are usage errors that show the usage', () => {
  assert.throws(() => parseCommand(['--bogus'], {}, 'virtc pod x'), (err: Error) => err instanceof UsageError && /usage: virtc pod x/.test(err.message));
});

test('virtc with an unknown command exits 2; --version exits 0', async () => {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string) => { stderr += chunk; return true; }) as typeof process.stderr.write;
  try {
    assert.is(await main(['frobnicate']), 2);
  } finally {
    process.stderr.write = write;
  }
  assert.match(stderr, /unknown command "frobnicate"/);
  assert.is(await main(['--version']), 0);
});

test('one table drives usage and parsing: the usage shows what the parser takes', () => {
  const spec = {
    words: 'thing make|break',
    options: { id: { type: 'string', usage: '--id ID' }, a: { type: 'string', usage: '[--a X | --b Y]' }, b: { type: 'string' }, json: { type: 'boolean', usage: '[--json]' } },
    tail: '-- CMD',
  } satisfies CommandSpec;
  assert.is(commandUsage(spec), 'virtc thing make|break --id ID [--a X | --b Y] [--json] -- CMD');
  assert.is(commandUsage(spec, 'thing make'), 'virtc thing make --id ID [--a X | --b Y] [--json] -- CMD');
  const parsed = parseSpec(['--id', 'x', '--b', 'y', '--', 'cmd'], spec, 'thing make');
  assert.equal([parsed.values.id, parsed.values.b, parsed.positionals], ['x', 'y', ['cmd']]);
  assert.throws(() => parseSpec(['--c'], spec, 'thing break'), (err: Error) => err instanceof UsageError && /usage: virtc thing break --id ID/.test(err.message));
  assert.is(usageOverview([spec], 45), 'virtc thing make|break --id ID\n                 [--a X | --b Y] [--json]\n                 -- CMD');
});

test('the overview names every option the commands take (pod create --hostname was missing once)', () => {
  assert.match(podUsage, /virtc pod create --id ID [^]*\[--hostname NAME\]/);
  assert.match(runUsage, /\[--memory-limit MIB\]/);
  assert.match(containerUsage, /virtc container enter --pod ID --id CID \[-i\] \[-t\|--tty\]/);
});

test.run();
