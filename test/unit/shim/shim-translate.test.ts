// The shim's pure parts: its command line, the OCI spec → ContainerConfig translation, and which
// pod a task belongs to.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseShimArgs, ShimUsageError } from '../../../src/shim/args.js';
import { containerFromSpec } from '../../../src/oci/container-from-spec.js';
import { parseSpec, specNetwork } from '../../../src/oci/spec.js';
import { groupOf, podIdFor, shimRoot, taskRole } from '../../../src/shim/pod-group.js';
import { shimSocketPath } from '../../../src/shim/address.js';
import { parseContainerConfig } from '../../../src/model/container-config.js';
import { VcError } from '../../../src/errors.js';
import { POD_ID_PATTERN } from '../../../src/model/pod-config.js';

test('shim args: containerd\'s start and delete lines, both flag spellings', () => {
  const start = parseShimArgs(['-namespace', 'k8s.io', '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'abc', '-debug', 'start']);
  assert.equal([start.action, start.namespace, start.id, start.debug], ['start', 'k8s.io', 'abc', true]);
  const del = parseShimArgs(['--namespace=default', '-id=x', '-bundle', '/b', 'delete']);
  assert.equal([del.action, del.namespace, del.bundle], ['delete', 'default', '/b']);
  assert.ok(parseShimArgs(['-v']).version);
});

test('shim args: an unknown flag, action or a missing value is an error naming it', () => {
  assert.throws(() => parseShimArgs(['-bogus', 'x', 'start']), (e: Error) => e instanceof ShimUsageError && /"-bogus"/.test(e.message));
  assert.throws(() => parseShimArgs(['frobnicate']), /unknown action "frobnicate"/);
  assert.throws(() => parseShimArgs(['-id']), /-id needs a value/);
  assert.throws(() => parseShimArgs(['-debug=maybe']), /-debug: expected true or false, got "maybe"/);
});

const baseSpec = {
  ociVersion: '1.0.2',
  process: {
    terminal: false, user: { uid: 1000, gid: 1000, additionalGids: [10] }, args: ['sh', '-c', 'id'], env: ['PATH=/bin', 'A=b=c'], cwd: '/work',
    capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true, oomScoreAdj: 5,
  },
  root: { path: 'rootfs' },
  hostname: 'box',
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid'] },
    { destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'ro'] },
  ],
  linux: {
    namespaces: [{ type: 'pid' }, { type: 'network', path: '/var/run/netns/cni-1' }],
    resources: { memory: { limit: 64 * 1024 * 1024 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 100 }, devices: [{ allow: false, access: 'rwm' }] },
    maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'], sysctl: { 'net.ipv4.ip_forward': '1' },
  },
};

test('an OCI spec becomes a ContainerConfig the API accepts, field for field', () => {
  const spec = parseSpec(baseSpec, 'config.json');
  const { config, warnings } = containerFromSpec(spec, 'c1', '/bundle/rootfs');
  const parsed = parseContainerConfig(config);
  assert.equal(parsed.command, ['sh', '-c', 'id']);
  assert.equal(parsed.entrypoint, []);
  assert.equal(parsed.env, { PATH: '/bin', A: 'b=c' });
  assert.equal([parsed.workdir, parsed.user, parsed.hostname, parsed.rootfs], ['/work', '1000:1000', 'box', '/bundle/rootfs']);
  assert.equal(parsed.additionalGids, [10]);
  assert.equal(parsed.limits, { memoryMiB: 64, cpus: 0.5, pids: 100 });
  assert.equal(parsed.security?.capabilities?.effective, ['CAP_KILL']);
  assert.equal(parsed.security?.capabilities?.ambient, []);
  assert.equal(parsed.security?.noNewPrivileges, true);
  assert.equal(parsed.security?.seccomp, 'unconfined', 'no linux.seccomp: no filter, as runc');
  assert.equal(parsed.security?.maskedPaths, ['/proc/kcore']);
  assert.equal(parsed.sysctls, { 'net.ipv4.ip_forward': '1' });
  assert.equal(parsed.guestMounts?.map((m) => m.destination), ['/proc']);
  assert.equal(parsed.mounts, [{ source: '/srv/data', destination: '/data', readOnly: true }]);
  assert.ok(warnings.some((w) => /linux\.resources\.devices/.test(w)), warnings.join('\n'));
  assert.equal(specNetwork(spec), { kind: 'path', path: '/var/run/netns/cni-1' });
});

test('what a VM cannot do is refused naming the field', () => {
  const userns = { ...baseSpec, linux: { ...baseSpec.linux, namespaces: [{ type: 'user' }] } };
  assert.throws(() => containerFromSpec(parseSpec(userns, 'config.json'), 'c', '/r'), (e: Error) => e instanceof VcError && (e as VcError).code === 'INVALID_CONFIG' && /linux\.namespaces: a user namespace/.test(e.message));
  const nfs = { ...baseSpec, mounts: [{ destination: '/n', type: 'nfs', source: 'srv:/x' }] };
  assert.throws(() => containerFromSpec(parseSpec(nfs, 'config.json'), 'c', '/r'), /mounts\[0\]\.type: "nfs" at \/n/);
  assert.throws(() => parseSpec({ process: { args: [] } }, 'config.json'), /process\.args: must name the program/);
  assert.throws(() => parseSpec({ process: { args: ['x'], cwd: 'rel' } }, 'config.json'), /process\.cwd: must be an absolute path, got "rel"/);
});

test('pods: CRI annotations group containers under their sandbox; ids fit a pod id', () => {
  assert.equal(taskRole({}, 'a'), { kind: 'alone' });
  assert.equal(groupOf(taskRole({ 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 'sb' }, 'c'), 'c'), 'sb');
  assert.throws(() => taskRole({ 'io.kubernetes.cri.container-type': 'container' }, 'c'), /needs io\.kubernetes\.cri\.sandbox-id/);
  assert.throws(() => taskRole({ 'io.kubernetes.cri.container-type': 'pod' }, 'c'), /"pod": expected sandbox or container/);
  assert.equal(podIdFor('short-id'), 'short-id');
  const long = 'f'.repeat(64);
  assert.ok(POD_ID_PATTERN.test(podIdFor(long)) && podIdFor(long).length <= 40 && podIdFor(long) !== podIdFor('e'.repeat(64)));
  assert.ok(POD_ID_PATTERN.test(podIdFor('_weird/name!')), podIdFor('_weird/name!'));
  assert.match(shimRoot('default', { VC_ROOT: '/r' }), /^\/r\/containerd\/default$/);
  assert.match(shimRoot('a'.repeat(40), { VC_ROOT: '/r' }), /^\/r\/containerd\/ns-[0-9a-f]{12}$/);
  assert.not.equal(shimSocketPath('/a.sock', 'ns', 'g'), shimSocketPath('/b.sock', 'ns', 'g'));
  assert.match(shimSocketPath('/a.sock', 'ns', 'g'), /^\/run\/containerd\/s\/[0-9a-f]{64}$/);
});

test.run();
