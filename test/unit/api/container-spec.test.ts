import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { agentLimits, containerSpec, imageSerial, type ImageDefaults } from '../../../src/api/container-spec.js';
import { parseContainerConfig } from '../../../src/model/container-config.js';
import { VcError } from '../../../src/errors.js';

const image: ImageDefaults = { entrypoint: ['/entry'], cmd: ['serve', '--port', '80'], env: ['PATH=/bin', 'MODE=prod'], workingDir: '/srv', user: 'www' };

test('the image supplies entrypoint, cmd, env, workdir and user by default', () => {
  const spec = containerSpec('p', parseContainerConfig({ id: 'c1' }), image);
  assert.equal(spec, { argv: ['/entry', 'serve', '--port', '80'], env: ['PATH=/bin', 'MODE=prod'], cwd: '/srv', user: 'www', hostname: 'c1' });
});

test('a command replaces Cmd but keeps Entrypoint; an entrypoint drops Cmd', () => {
  assert.equal(containerSpec('p', parseContainerConfig({ id: 'c', command: ['x'] }), image).argv, ['/entry', 'x']);
  assert.equal(containerSpec('p', parseContainerConfig({ id: 'c', entrypoint: ['/bin/sh'] }), image).argv, ['/bin/sh']);
});

test('config env overrides and extends the image env; workdir and user override', () => {
  const spec = containerSpec('p', parseContainerConfig({ id: 'c', env: { MODE: 'dev', NEW: '1' }, workdir: '/tmp', user: '0:0' }), image);
  assert.equal(spec.env, ['PATH=/bin', 'MODE=dev', 'NEW=1']);
  assert.is(spec.cwd, '/tmp');
  assert.is(spec.user, '0:0');
});

test('an image with no command and no config command is an INVALID_CONFIG error naming command', () => {
  const empty: ImageDefaults = { entrypoint: [], cmd: [], env: [], workingDir: '', user: '' };
  try {
    containerSpec('p', parseContainerConfig({ id: 'c' }), empty);
    assert.unreachable('accepted');
  } catch (err) {
    assert.is((err as VcError).code, 'INVALID_CONFIG');
    assert.match((err as Error).message, /command: /);
  }
  const spec = containerSpec('p', parseContainerConfig({ id: 'c', command: ['true'] }), empty);
  assert.equal([spec.cwd, spec.user], ['/', '0:0']);
});

test('hostnames are derived from ids that are not valid host names', () => {
  assert.is(containerSpec('p', parseContainerConfig({ id: 'my_app.v2', command: ['x'] }), image).hostname, 'my-app-v2');
});

test('limits become cgroup values', () => {
  assert.equal(agentLimits({ memoryMiB: 64, pids: 100, cpus: 0.5 }), { memoryBytes: 64 * 1024 * 1024, pids: 100, cpuPeriodUs: 100000, cpuQuotaUs: 50000 });
  assert.equal(agentLimits(undefined), {});
});

test('container config errors name the field and the value', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ id: '-bad' }, /id: .*got "-bad"/],
    [{ id: 'c', image: 'oci:x', rootfs: '/r' }, /image: give image or rootfs, not both/],
    [{ id: 'c', workdir: 'rel' }, /workdir: must be an absolute path, got "rel"/],
    [{ id: 'c', limits: { memoryMiB: 1 } }, /limits\.memoryMiB: .*got 1/],
    [{ id: 'c', env: { 'A=B': 'x' } }, /env/],
    [{ id: 'c', user: 'a:b:c' }, /user: .*got "a:b:c"/],
  ];
  for (const [input, message] of cases) {
    try {
      parseContainerConfig(input);
      assert.unreachable(`accepted ${JSON.stringify(input)}`);
    } catch (err) {
      assert.is((err as VcError).code, 'INVALID_CONFIG');
      assert.match((err as Error).message, message);
    }
  }
});

test('image serials fit virtio-blk (20 bytes) and ignore the algorithm prefix', () => {
  const digest = 'a'.repeat(10) + 'b'.repeat(54);
  assert.is(imageSerial(digest), 'aaaaaaaaaabbbbbbbbbb');
  assert.is(imageSerial(`sha256:${digest}`), 'aaaaaaaaaabbbbbbbbbb');
});

test.run();
