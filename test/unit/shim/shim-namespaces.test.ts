// linux.namespaces paths of a CRI member's spec as ContainerConfig.joinNamespaces: the sandbox's
// pid and ipc namespaces (/proc/<sandbox task pid>/ns/...) become the sandbox's container; network
// and uts are the pod's anyway; anything else is refused naming the entry. Also the API's own
// checks of joinNamespaces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerFromSpec } from '../../../src/oci/container-from-spec.js';
import { parseSpec } from '../../../src/oci/spec.js';
import { parseContainerConfig } from '../../../src/model/container-config.js';
import { VcError } from '../../../src/errors.js';

const SANDBOX_PID = 412;
const containerOfPid = (pid: number) => (pid === SANDBOX_PID ? 'sandbox1' : undefined);

function member(namespaces: Array<{ type: string; path?: string }>, mounts: unknown[] = []) {
  return parseSpec({
    process: { args: ['sleep', '1'], cwd: '/', user: { uid: 0, gid: 0 } },
    root: { path: 'rootfs' },
    mounts,
    linux: { namespaces },
  }, 'config.json');
}

const shmBind = { destination: '/dev/shm', type: 'bind', source: '/run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm', options: ['rbind', 'ro'] };

test('CRI shareProcessNamespace: pid and ipc paths of the sandbox task join its container; network and uts paths are the pod\'s', () => {
  const spec = member([
    { type: 'pid', path: `/proc/${SANDBOX_PID}/ns/pid` },
    { type: 'ipc', path: `/proc/${SANDBOX_PID}/ns/ipc` },
    { type: 'uts', path: `/proc/${SANDBOX_PID}/ns/uts` },
    { type: 'mount' },
    { type: 'network', path: '/var/run/netns/cni-1' },
  ], [shmBind]);
  const { config, warnings } = containerFromSpec(spec, 'c1', '/b/rootfs', containerOfPid);
  assert.equal(parseContainerConfig(config).joinNamespaces, { pid: 'sandbox1', ipc: 'sandbox1' });
  assert.not.ok(warnings.some((w) => /\/dev\/shm/.test(w)), 'the sandbox\'s /dev/shm is shared in the guest: no warning');
  assert.not.ok((config.mounts as unknown[] | undefined)?.length, 'the host shm directory is not copied in');
});

test('CRI default (pid CONTAINER): only ipc joins; new namespaces join nothing', () => {
  const spec = member([{ type: 'pid' }, { type: 'ipc', path: `/proc/${SANDBOX_PID}/ns/ipc` }, { type: 'uts', path: `/proc/${SANDBOX_PID}/ns/uts` }]);
  assert.equal(containerFromSpec(spec, 'c1', '/r', containerOfPid).config.joinNamespaces, { ipc: 'sandbox1' });
  const sandbox = member([{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network', path: '/var/run/netns/cni-1' }], [shmBind]);
  const t = containerFromSpec(sandbox, 'sandbox1', '/r', containerOfPid);
  assert.is(t.config.joinNamespaces, undefined);
  assert.ok(t.warnings.some((w) => /\/dev\/shm bind becomes a tmpfs of the container/.test(w)), t.warnings.join('\n'));
});

test('a namespace path that is no task of this pod, or of a kind the VM cannot join, is refused naming the entry', () => {
  const refused = (namespaces: Array<{ type: string; path?: string }>, re: RegExp) =>
    assert.throws(() => containerFromSpec(member(namespaces), 'c1', '/r', containerOfPid), (e: Error) => e instanceof VcError && (e as VcError).code === 'INVALID_CONFIG' && re.test(e.message), JSON.stringify(namespaces));
  refused([{ type: 'pid' }, { type: 'pid', path: '/proc/999/ns/pid' }], /linux\.namespaces\[1\]\.path: "\/proc\/999\/ns\/pid" is not the pid namespace of a container of this pod/);
  refused([{ type: 'ipc', path: `/proc/${SANDBOX_PID}/ns/pid` }], /linux\.namespaces\[0\]\.path: .* is not the ipc namespace/);
  refused([{ type: 'ipc', path: '/var/run/ipcns/x' }], /linux\.namespaces\[0\]\.path: "\/var\/run\/ipcns\/x" is not the ipc namespace/);
  refused([{ type: 'mount', path: `/proc/${SANDBOX_PID}/ns/mnt` }], /linux\.namespaces\[0\]\.path: .*joining an existing mount namespace is not supported/);
  // Without a way to know the pod's tasks (the default), no path maps.
  assert.throws(() => containerFromSpec(member([{ type: 'pid', path: `/proc/${SANDBOX_PID}/ns/pid` }]), 'c1', '/r'), /linux\.namespaces\[0\]\.path/);
});

test('ContainerConfig.joinNamespaces: ids checked, unknown keys and the container itself refused by name', () => {
  assert.equal(parseContainerConfig({ id: 'a', joinNamespaces: { pid: 'b' } }).joinNamespaces, { pid: 'b' });
  assert.throws(() => parseContainerConfig({ id: 'a', joinNamespaces: { net: 'b' } }), /joinNamespaces: .*"net"/);
  assert.throws(() => parseContainerConfig({ id: 'a', joinNamespaces: { pid: 'no/pe' } }), /joinNamespaces\.pid: must be 1-64 characters.*got "no\/pe"/);
  assert.throws(() => parseContainerConfig({ id: 'a', joinNamespaces: { ipc: 'a' } }), /joinNamespaces\.ipc: must name another container of the pod, not this one, got "a"/);
});

test.run();
