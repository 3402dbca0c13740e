import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePodConfig } from '../../../src/model/pod-config.js';
import { VcError } from '../../../src/errors.js';

function errorOf(input: unknown): VcError {
  try {
    parsePodConfig(input);
  } catch (err) {
    assert.instance(err, VcError);
    return err as VcError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

test('defaults fill in hypervisor, vcpus and memory', () => {
  const config = parsePodConfig({ id: 'web-1' });
  assert.equal(config, { id: 'web-1', hypervisor: 'auto', vcpus: 1, memoryMiB: 512, network: { mode: 'bridge' }, containers: [] });
});

test('network: the CLI spellings and the object forms', () => {
  assert.equal(parsePodConfig({ id: 'p', network: 'none' }).network, { mode: 'none' });
  assert.equal(parsePodConfig({ id: 'p', network: 'bridge' }).network, { mode: 'bridge' });
  assert.equal(parsePodConfig({ id: 'p', network: 'netns:/run/netns/x' }).network, { mode: 'netns', path: '/run/netns/x' });
  assert.equal(parsePodConfig({ id: 'p', network: { mode: 'netns', path: '/proc/1/ns/net' } }).network, { mode: 'netns', path: '/proc/1/ns/net' });
  const conflist = { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'bridge', bridge: 'b0' }] };
  assert.equal(parsePodConfig({ id: 'p', network: { mode: 'bridge', conflist } }).network, { mode: 'bridge', conflist });
});

test('network: a bad mode or path names the field and the value', () => {
  for (const bad of ['host', 'netns:relative', 'netns:', { mode: 'netns' }, { mode: 'bridge', conflist: { name: 'n' } }, { mode: 'none', path: '/x' }]) {
    const err = errorOf({ id: 'p', network: bad });
    assert.is(err.code, 'INVALID_CONFIG');
    assert.match(err.message, /network/, JSON.stringify(bad));
  }
  assert.match(errorOf({ id: 'p', network: 'host' }).message, /"host"/);
});

test('dns: name servers must be addresses, words must not hold # or ;', () => {
  assert.equal(parsePodConfig({ id: 'p', dns: { nameservers: ['10.0.0.1', 'fd00::1'] } }).dns, { nameservers: ['10.0.0.1', 'fd00::1'], search: [], options: [] });
  assert.match(errorOf({ id: 'p', dns: { nameservers: ['dns.example'] } }).message, /dns\.nameservers/);
  assert.match(errorOf({ id: 'p', dns: { search: ['a;b'] } }).message, /dns\.search/);
});

test('a bad id names the field and the value', () => {
  const err = errorOf({ id: '../etc' });
  assert.is(err.code, 'INVALID_CONFIG');
  assert.match(err.message, /^invalid pod config: id: /);
  assert.match(err.message, /got "\.\.\/etc"/);
});

test('ids longer than 63 characters are rejected', () => {
  assert.match(errorOf({ id: 'a'.repeat(64) }).message, /id: /);
  assert.is(parsePodConfig({ id: 'a'.repeat(63) }).id.length, 63);
});

test('vcpus out of range names the field and the value', () => {
  const err = errorOf({ id: 'p', vcpus: 0 });
  assert.match(err.message, /vcpus: .*got 0/);
  assert.match(errorOf({ id: 'p', vcpus: 1.5 }).message, /vcpus: .*got 1\.5/);
});

test('memory below the floor is rejected', () => {
  assert.match(errorOf({ id: 'p', memoryMiB: 64 }).message, /memoryMiB: .*got 64/);
});

test('an unknown hypervisor is rejected with the value', () => {
  assert.match(errorOf({ id: 'p', hypervisor: 'xen' }).message, /hypervisor: .*got "xen"/);
});

test('kernel needs both path and modulesDir', () => {
  assert.match(errorOf({ id: 'p', kernel: { path: '/boot/vmlinuz' } }).message, /kernel\.modulesDir: /);
  const config = parsePodConfig({ id: 'p', kernel: { path: '/k', modulesDir: '/m' } });
  assert.equal(config.kernel, { path: '/k', modulesDir: '/m' });
});

test('unknown fields are rejected rather than ignored', () => {
  assert.match(errorOf({ id: 'p', cpus: 2 }).message, /cpus/);
});

test('several problems are all reported', () => {
  const err = errorOf({ id: '', vcpus: -1, memoryMiB: 'lots' });
  assert.match(err.message, /id: /);
  assert.match(err.message, /vcpus: /);
  assert.match(err.message, /memoryMiB: .*got "lots"/);
});

test.run();
