// docker's run flags (src/cli/volume-flags.ts, process-flags.ts, run-command.ts runPlan) as the
// config they become, and the errors that name the flag and the value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSpec, UsageError } from '../../../src/cli/args.js';
import { containerConfigFrom, containerOptions, containerUsage } from '../../../src/cli/container-commands.js';
import { podUsage } from '../../../src/cli/pod-commands.js';
import { envFrom, parseEnv, userFrom, workdirFrom } from '../../../src/cli/process-flags.js';
import { runPlan, runUsage } from '../../../src/cli/run-command.js';
import { mountsFrom, parseVolume } from '../../../src/cli/volume-flags.js';
import { main } from '../../../src/cli/main.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir('vc-runflags');
const dir = join(tmp.path, 'data');
const file = join(tmp.path, 'data', 'f');
mkdirSync(dir, { recursive: true });
writeFileSync(file, 'hello\n');

test.after(() => tmp.remove());

const usageError = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (err: Error) => err instanceof UsageError && pattern.test(err.message), `expected a UsageError matching ${pattern}`);

test('-v HOST:CONTAINER[:ro]: a directory or a file, read-write unless ro', () => {
  assert.equal(parseVolume(`${dir}:/data`), { source: dir, destination: '/data', readOnly: false });
  assert.equal(parseVolume(`${dir}:/data:ro`), { source: dir, destination: '/data', readOnly: true });
  assert.equal(parseVolume(`${file}:/etc/f:rw`), { source: file, destination: '/etc/f', readOnly: false });
  assert.equal(parseVolume(`${file}:/etc/f:ro,ro`), { source: file, destination: '/etc/f', readOnly: true });
  // The container path as the guest will name it; a host path relative to the working directory.
  assert.equal(parseVolume('./data:/srv//www/:ro', tmp.path), { source: dir, destination: '/srv/www', readOnly: true });
  assert.equal(parseVolume('../data/f:/f', join(tmp.path, 'data')), { source: file, destination: '/f', readOnly: false });
  assert.equal(parseVolume('.:/work', dir), { source: dir, destination: '/work', readOnly: false });
});

test('-v refusals name the flag and the value', () => {
  usageError(() => parseVolume('foo'), /^-v\/--volume: "foo" is not HOST:CONTAINER\[:ro\]$/);
  usageError(() => parseVolume(`${dir}:`), /"[^"]*:" is not HOST:CONTAINER\[:ro\]/);
  usageError(() => parseVolume(':/data'), /":\/data" is not HOST:CONTAINER\[:ro\]/);
  usageError(() => parseVolume(`${dir}:/data:ro:x`), /is not HOST:CONTAINER\[:ro\]/);
  usageError(() => parseVolume(`${dir}:data`), /-v\/--volume: ".*:data": CONTAINER "data" is not an absolute path/);
  usageError(() => parseVolume(`${dir}:/`), /CONTAINER must not be \//);
  usageError(() => parseVolume(`${dir}:/data:rx`), /-v\/--volume: ".*:\/data:rx": unknown option "rx" \(ro or rw\)/);
  usageError(() => parseVolume(`${dir}:/data:ro,z`), /unknown option "z"/);
  usageError(() => parseVolume(`${dir}:/data:`), /unknown option ""/);
  usageError(() => parseVolume(`${dir}:/data:ro,rw`), /ro and rw together/);
  usageError(() => parseVolume('vol:/data'), /HOST "vol" must be an absolute path or start with \.\/ \(named volumes are not supported\)/);
  usageError(() => parseVolume(`${tmp.path}/missing:/data`), /HOST .*\/missing does not exist/);
  usageError(() => parseVolume('/dev/null:/null'), /HOST \/dev\/null is neither a file nor a directory/);
});

test('-v repeated: one mount each, in order; two at one container path are refused', () => {
  assert.is(mountsFrom({}), undefined);
  assert.equal(mountsFrom({ volume: [`${dir}:/a:ro`, `${file}:/b`] }), [
    { source: dir, destination: '/a', readOnly: true }, { source: file, destination: '/b', readOnly: false },
  ]);
  usageError(() => mountsFrom({ volume: [`${dir}:/a`, `${file}:/a/`] }), /-v\/--volume: ".*:\/a" and ".*:\/a\/" both mount at \/a/);
});

test('-e KEY=VALUE, and -e KEY takes the host value (left out when the host has none); the last one wins', () => {
  const host = { HOME: '/root', EMPTY: '' };
  assert.equal(parseEnv(['A=1', 'HOME', 'EMPTY', 'UNSET', 'A=2', 'B=x=y'], host), { A: '2', HOME: '/root', EMPTY: '', B: 'x=y' });
  assert.is(envFrom({}), undefined);
  assert.equal(envFrom({ env: ['K=v'] }), { K: 'v' });
  usageError(() => parseEnv(['=v'], host), /-e\/--env: expected KEY=VALUE or KEY, got "=v"/);
  usageError(() => parseEnv([''], host), /got ""/);
});

test('-w must be absolute; -u is USER or USER:GROUP', () => {
  assert.is(workdirFrom({ workdir: '/data' }), '/data');
  assert.is(workdirFrom({}), undefined);
  usageError(() => workdirFrom({ workdir: 'data' }), /-w\/--workdir: "data" is not an absolute path/);
  assert.is(userFrom({ user: '1000' }), '1000');
  assert.is(userFrom({ user: 'nobody:nogroup' }), 'nobody:nogroup');
  usageError(() => userFrom({ user: '1000:1000:1' }), /-u\/--user: "1000:1000:1" is not USER\[:GROUP\]/);
  usageError(() => userFrom({ user: '' }), /-u\/--user: "" is not USER\[:GROUP\]/);
  usageError(() => userFrom({ user: 'a b' }), /"a b"/);
});

test('virtc run: the short flags, grouped and repeated, become one pod and container', () => {
  const plan = runPlan([
    '-it', '--name', 'web1', '-v', `${dir}:/data:ro`, '--volume', `${file}:/etc/app.conf`, '-e', 'A=1', '-e', 'PATH', '--env=B=2',
    '-w', '/data', '-u', '1000:100', '--memory', '256', '--', 'sh', '-c', 'pwd',
  ]);
  assert.is(plan.podId, 'web1');
  assert.equal([plan.detach, plan.rm, plan.published], [false, false, []]);
  assert.equal(plan.container, {
    id: 'main', image: undefined, rootfs: undefined, command: ['sh', '-c', 'pwd'],
    env: { A: '1', PATH: process.env.PATH!, B: '2' }, workdir: '/data', user: '1000:100', tty: true, limits: undefined,
    mounts: [{ source: dir, destination: '/data', readOnly: true }, { source: file, destination: '/etc/app.conf', readOnly: false }],
    security: undefined,
  });
  assert.is(plan.pod.memoryMiB, 256);
  assert.is(plan.pod.template, undefined);
  assert.is(runPlan(['--template', 'base', '--', 'true']).pod.template, 'base', '--template NAME: the pod is restored from template NAME');
  const detached = runPlan(['-d', '--', 'sleep', '100']);
  assert.ok(detached.detach);
  assert.match(detached.podId, /^run-[0-9a-f]{8}$/);
  assert.ok(runPlan(['-dt']).detach);
});

test('virtc run refuses -d with --rm or -p, a bad --name, and bad flag values, before making anything', () => {
  usageError(() => runPlan(['-d', '--rm']), /^-d and --rm cannot be combined: .*virtc pod delete --force --id ID\nusage: virtc run/);
  usageError(() => runPlan(['--rm', '--detach']), /-d and --rm cannot be combined/);
  usageError(() => runPlan(['-d', '-p', '8080:80']), /-p cannot be combined with -d: .*virtc pod port-forward/);
  usageError(() => runPlan(['--name', 'bad/name']), /^--name: "bad\/name" is not a pod id/);
  usageError(() => runPlan(['-v', 'nocolon']), /-v\/--volume: "nocolon" is not HOST:CONTAINER\[:ro\]/);
  usageError(() => runPlan(['-w', 'rel']), /-w\/--workdir: "rel"/);
  usageError(() => runPlan(['-x']), /Unknown option '-x'[^]*usage: virtc run/);
});

test('virtc run -d --rm exits 2 through main with the message on stderr', async () => {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string) => { stderr += chunk; return true; }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['--root', tmp.path, 'run', '-d', '--rm', '--', 'true']);
  } finally {
    process.stderr.write = write;
  }
  assert.is(code, 2);
  assert.match(stderr, /^virtc: -d and --rm cannot be combined/);
});

test('container create takes -v/-e/-w/-u too; the enter commands -e/-w (and -u in a container)', () => {
  const create = parseSpec(['--pod', 'p', '--id', 'c', '-v', `${dir}:/d:ro`, '-e', 'K=v', '-w', '/d', '-u', 'nobody'],
    { words: 'container create', options: { pod: { type: 'string' }, id: { type: 'string' }, ...containerOptions } });
  const config = containerConfigFrom('c', create);
  assert.equal([config.mounts, config.env, config.workdir, config.user], [[{ source: dir, destination: '/d', readOnly: true }], { K: 'v' }, '/d', 'nobody']);
  for (const part of ['[-v|--volume HOST:CONTAINER[:ro]]...', '[-e|--env KEY[=VALUE]]...', '[-w|--workdir DIR]', '[-u|--user USER[:GROUP]]']) {
    assert.ok(containerUsage.includes(part), `${part} in container usage`);
    assert.ok(runUsage.includes(part), `${part} in run usage`);
  }
  assert.ok(runUsage.includes('[--name NAME]') && runUsage.includes('[--rm | -d|--detach]'), runUsage);
  const oneLine = (usage: string) => usage.replace(/\n\s+/g, ' ');
  assert.match(oneLine(podUsage), /pod enter --id ID \[-i\] \[-t\|--tty\] \[-e\|--env KEY\[=VALUE\]\]\.\.\. \[-w\|--workdir DIR\]/);
  assert.match(oneLine(containerUsage), /container enter --pod ID --id CID \[-i\] \[-t\|--tty\] \[-e\|--env KEY\[=VALUE\]\]\.\.\. \[-w\|--workdir DIR\] \[-u\|--user USER\[:GROUP\]\]/);
});

test.run();
