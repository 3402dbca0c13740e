// The podman rig's pure parts (test/helpers/podman.ts, podman-config.ts): where the rig's
// container defaults go in a podman command line, and what its containers.conf says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withContainerDefaults } from '../../helpers/podman.js';
import { containersConf, podmanPaths, storageConf } from '../../helpers/podman-config.js';

const defaults = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--cgroup-parent', '/vcpod-x'];

test('run and create get the defaults right after the command, after any global flags', () => {
  assert.equal(withContainerDefaults(['run', '--rm', 'IMG', 'echo'], '/vcpod-x'), ['run', ...defaults, '--rm', 'IMG', 'echo']);
  assert.equal(withContainerDefaults(['container', 'create', 'IMG'], '/vcpod-x'), ['container', 'create', ...defaults, 'IMG']);
  assert.equal(withContainerDefaults(['--runtime', '/bin/rt', 'run', 'IMG'], '/vcpod-x'), ['--runtime', '/bin/rt', 'run', ...defaults, 'IMG']);
  assert.equal(withContainerDefaults(['--runtime=/bin/rt', '--debug', 'create', 'IMG'], '/vcpod-x'), ['--runtime=/bin/rt', '--debug', 'create', ...defaults, 'IMG']);
});

test('other commands are left alone, even when an argument is "run"', () => {
  assert.equal(withContainerDefaults(['exec', 'c1', 'run'], '/vcpod-x'), ['exec', 'c1', 'run']);
  assert.equal(withContainerDefaults(['--runtime', 'run', 'ps'], '/vcpod-x'), ['--runtime', 'run', 'ps']);
  assert.equal(withContainerDefaults([], '/vcpod-x'), []);
});

test("containers.conf registers each runtime under its file name and keeps podman's defaults off the host", () => {
  const p = podmanPaths('/tmp/vcpod-t');
  const conf = containersConf(p, { runtimes: ['/opt/x/bin/virtc-runtime'], defaultRuntime: '/opt/x/bin/virtc-runtime', networkBackend: 'netavark' });
  assert.match(conf, /^"virtc-runtime" = \["\/opt\/x\/bin\/virtc-runtime"\]$/m);
  assert.match(conf, /^runtime = "virtc-runtime"$/m);
  assert.match(conf, /^"runc" = \[/m);
  assert.match(conf, /^runtime_supports_json = \[.*"runc".*"virtc-runtime"\]$/m);
  assert.match(conf, /^lock_type = "file"$/m);
  assert.match(conf, /^tmp_dir = "\/tmp\/vcpod-t\/tmp"$/m);
  assert.match(conf, /^network_config_dir = "\/tmp\/vcpod-t\/networks"$/m);
  assert.match(storageConf(p, 'vfs'), /^driver = "vfs"$/m);
  assert.not.match(storageConf(p, 'vfs'), /overlay/);
});

test.run();
