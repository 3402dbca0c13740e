// docker's confinement flags (src/cli/security-flags.ts) as container config.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../../src/cli/args.js';
import { containerConfigFrom, containerUsage } from '../../../src/cli/container-commands.js';
import { runUsage } from '../../../src/cli/run-command.js';
import { securityFrom } from '../../../src/cli/security-flags.js';
import { DEFAULT_CAPABILITIES } from '../../../src/oci/defaults.js';
import { CAPABILITY_NAMES } from '../../../src/oci/capabilities.js';

const usageError = (values: Record<string, unknown>, pattern: RegExp) =>
  assert.throws(() => securityFrom(values), (err: Error) => err instanceof UsageError && pattern.test(err.message));

test('no flags: no security (the OCI defaults apply later)', () => {
  assert.is(securityFrom({}), undefined);
  assert.is(containerConfigFrom('c', { values: {}, positionals: [] }).security, undefined);
});

test('--cap-add/--cap-drop start from the defaults, drops first; names in any case, with or without CAP_', () => {
  const s = securityFrom({ 'cap-add': ['net_admin', 'CAP_SYS_PTRACE'], 'cap-drop': ['chown', 'NET_RAW'] })!;
  const expected = [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_NET_RAW'), 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE'];
  assert.equal(s.capabilities, { bounding: expected, effective: expected, permitted: expected });
  assert.equal(securityFrom({ 'cap-drop': ['ALL'], 'cap-add': ['kill'] })!.capabilities!.bounding, ['CAP_KILL']);
  assert.equal(securityFrom({ 'cap-add': ['ALL'] })!.capabilities!.bounding!.length, CAPABILITY_NAMES.length);
  usageError({ 'cap-add': ['fly'] }, /--cap-add: unknown capability "fly"/);
});

test('--privileged, --security-opt seccomp=unconfined|PATH and no-new-privileges', () => {
  assert.equal(securityFrom({ privileged: true }), { privileged: true });
  assert.equal(securityFrom({ 'security-opt': ['seccomp=unconfined', 'no-new-privileges'] }), { seccomp: 'unconfined', noNewPrivileges: true });
  assert.equal(securityFrom({ 'security-opt': ['no-new-privileges:false'] }), { noNewPrivileges: false });
  const dir = mkdtempSync(join(tmpdir(), 'vc-seccomp-'));
  try {
    const path = join(dir, 'p.json');
    writeFileSync(path, '{"defaultAction":"SCMP_ACT_ERRNO"}');
    assert.equal(securityFrom({ 'security-opt': [`seccomp=${path}`] }), { seccomp: { defaultAction: 'SCMP_ACT_ERRNO' } });
    writeFileSync(path, '{');
    usageError({ 'security-opt': [`seccomp=${path}`] }, /seccomp=.*p\.json: not JSON/);
    usageError({ 'security-opt': [`seccomp=${join(dir, 'missing.json')}`] }, /missing\.json: cannot read it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  usageError({ 'security-opt': ['apparmor=unconfined'] }, /--security-opt: unsupported "apparmor=unconfined"/);
});

test('run and container create show the flags', () => {
  for (const usage of [runUsage, containerUsage]) {
    for (const part of ['[--privileged]', '[--cap-add CAP]...', '[--cap-drop CAP]...', '[--security-opt seccomp=unconfined|PATH|no-new-privileges]...']) assert.ok(usage.includes(part), `${part} in ${usage}`);
  }
});

test.run();
