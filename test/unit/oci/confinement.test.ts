// Container confinement as the host sends it (docs/agent-protocol.md, "Confinement"): the OCI
// defaults, privileged, given pieces, and config errors that name the field and value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseContainerConfig } from '../../../src/model/container-config.js';
import { agentConfinement, agentExecConfinement } from '../../../src/oci/confinement.js';
import { CAPABILITIES, CAPABILITY_NAMES, capabilityMask, normalizeCapabilityName } from '../../../src/oci/capabilities.js';
import { VcError } from '../../../src/errors.js';

const DEFAULT_MASK = 0xa80425fb; // docker's and containerd's CapEff for root
const ALL_MASK = 2 ** 41 - 1;

function configError(input: Record<string, unknown>): string {
  try {
    parseContainerConfig({ id: 'c', ...input });
  } catch (err) {
    assert.instance(err, VcError);
    assert.is((err as VcError).code, 'INVALID_CONFIG');
    return (err as Error).message;
  }
  return assert.unreachable('accepted') as never;
}

test('the capability table: 41 names, numbered 0..40 without gaps', () => {
  assert.is(CAPABILITY_NAMES.length, 41);
  assert.equal(Object.values(CAPABILITIES).sort((a, b) => a - b), [...Array(41).keys()]);
  assert.is(CAPABILITIES.CAP_SYS_ADMIN, 21);
  assert.is(CAPABILITIES.CAP_CHECKPOINT_RESTORE, 40);
  assert.is(capabilityMask(CAPABILITY_NAMES), ALL_MASK);
  assert.is(normalizeCapabilityName('net_admin'), 'CAP_NET_ADMIN');
  assert.is(normalizeCapabilityName('CAP_KILL'), 'CAP_KILL');
});

test('nothing given: the OCI defaults — default capabilities, seccomp, masked and read-only paths', () => {
  const c = agentConfinement(parseContainerConfig({ id: 'c' }));
  assert.equal(c.security.caps, { bounding: DEFAULT_MASK, effective: DEFAULT_MASK, permitted: DEFAULT_MASK, inheritable: 0, ambient: 0 });
  assert.is(c.security.noNewPrivileges, false);
  assert.ok(c.security.seccomp && Buffer.from(c.security.seccomp.filter, 'base64').length % 8 === 0, 'a compiled filter');
  assert.ok(c.security.maskedPaths!.includes('/proc/kcore') && c.security.maskedPaths!.includes('/sys/firmware'));
  assert.equal(c.security.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  assert.equal(Object.keys(c), ['security'], 'nothing else unless asked');
});

test('privileged: every capability, no filter, nothing masked, /sys writable; pieces given still win', () => {
  let c = agentConfinement(parseContainerConfig({ id: 'c', security: { privileged: true } }));
  assert.equal(c.security.caps, { bounding: ALL_MASK, effective: ALL_MASK, permitted: ALL_MASK, inheritable: 0, ambient: 0 });
  assert.is(c.security.seccomp, undefined);
  assert.equal([c.security.maskedPaths, c.security.readonlyPaths], [[], []]);
  assert.equal(c.mounts, [{ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'rw'] }]);
  c = agentConfinement(parseContainerConfig({ id: 'c', security: { privileged: true, seccomp: 'default', maskedPaths: ['/proc/kcore'] } }));
  assert.ok(c.security.seccomp);
  assert.equal(c.security.maskedPaths, ['/proc/kcore']);
});

test('given pieces: capability sets (absent sets empty, as in OCI), unconfined, rlimits, sysctls, gids, mounts', () => {
  const c = agentConfinement(parseContainerConfig({
    id: 'c',
    security: { capabilities: { bounding: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'], inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] }, seccomp: 'unconfined', noNewPrivileges: true },
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }, { type: 'RLIMIT_CORE', soft: null, hard: 18446744073709551615 }],
    sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000' },
    oomScoreAdj: -500,
    additionalGids: [10, 20],
    guestMounts: [{ destination: '/run/q', type: 'mqueue' }],
  }));
  assert.equal(c.security.caps, { bounding: 2 ** 5 + 2 ** 10, effective: 0, permitted: 2 ** 10, inheritable: 2 ** 10, ambient: 2 ** 10 });
  assert.is(c.security.seccomp, undefined);
  assert.is(c.security.noNewPrivileges, true);
  assert.equal(c.rlimits, [{ resource: 7, soft: 1024, hard: 4096 }, { resource: 4, soft: null, hard: null }]);
  assert.equal(c.sysctls, { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000' });
  assert.is(c.oomScoreAdj, -500);
  assert.equal(c.additionalGids, [10, 20]);
  assert.equal(c.mounts, [{ destination: '/run/q', type: 'mqueue' }]);
});

test('exec overrides: only what is given', () => {
  assert.equal(agentExecConfinement({}), {});
  const e = agentExecConfinement({ security: { noNewPrivileges: true, seccomp: 'unconfined' }, rlimits: [{ type: 'RLIMIT_NPROC', soft: 10, hard: 10 }], additionalGids: [] });
  assert.equal(e, { security: { noNewPrivileges: true, seccomp: { filter: 'BgAAAAAA/38=' } }, rlimits: [{ resource: 6, soft: 10, hard: 10 }], additionalGids: [] });
});

test('bad confinement fields: INVALID_CONFIG naming the field and value', () => {
  assert.match(configError({ security: { capabilities: { bounding: ['CAP_FLY'] } } }), 'security.capabilities.bounding.0: is not a Linux capability name (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE), got "CAP_FLY"');
  assert.match(configError({ security: { capabilities: { effective: ['CAP_KILL'] } } }), 'security.capabilities.effective: must be within permitted: CAP_KILL');
  assert.match(configError({ security: { capabilities: { permitted: ['CAP_KILL'], ambient: ['CAP_KILL'] } } }), 'security.capabilities.ambient: must be within both permitted and inheritable: CAP_KILL');
  assert.match(configError({ security: { seccomp: 'strict' } }), 'security.seccomp');
  assert.match(configError({ security: { maskedPaths: ['proc/kcore'] } }), 'security.maskedPaths.0: must be an absolute path without empty, . or .. components, got "proc/kcore"');
  assert.match(configError({ security: { noNewPrivs: true } }), 'security');
  assert.match(configError({ rlimits: [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }] }), 'rlimits.0.type');
  assert.match(configError({ rlimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }] }), 'rlimits.0.soft: must not be above hard (5), got 10');
  assert.match(configError({ sysctls: { 'vm.swappiness': '1' } }), 'sysctls.vm.swappiness: is not a namespaced sysctl');
  assert.match(configError({ oomScoreAdj: 2000 }), 'oomScoreAdj');
  assert.match(configError({ additionalGids: [-1] }), 'additionalGids.0');
  assert.match(configError({ guestMounts: [{ destination: '/x', type: 'nfs' }] }), 'guestMounts.0.type');
  assert.match(configError({ guestMounts: [{ destination: '/x', type: 'bind' }] }), 'guestMounts.0.source: a bind needs an absolute path inside the container');
});

test.run();
