// forwardPort and listenForward check their arguments before looking for the pod: INVALID_CONFIG
// naming the field and the value; then an unknown pod is POD_NOT_FOUND.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { forwardPort, listenForward, VcError } from '../../../src/index.js';
import { expectCode } from '../../helpers/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir('vc-pf-unit');
const root = tmp.path;
test.after(() => tmp.remove());

test('forwardPort: a bad guest port or host is INVALID_CONFIG naming it and the value', async () => {
  for (const [port, value] of [[0, '0'], [65536, '65536'], [1.5, '1.5'], ['80', '"80"'], [undefined, 'undefined']] as const) {
    await expectCode(forwardPort('p', port as never, { root }), VcError, 'INVALID_CONFIG', new RegExp(`^guestPort: expected an integer 1\\.\\.65535, got ${value.replace('.', '\\.')}$`));
  }
  await expectCode(forwardPort('p', 80, { root, host: 'localhost' }), VcError, 'INVALID_CONFIG', /^host: expected an IPv4 or IPv6 address, got "localhost"$/);
  await expectCode(forwardPort('p', 80, { root }), VcError, 'POD_NOT_FOUND', /pod p does not exist/);
  const aborted = AbortSignal.abort();
  await expectCode(forwardPort('p', 80, { root, signal: aborted }), VcError, 'ABORTED');
});

test('listenForward: guestPort, hostPort (0 allowed), hostAddr and guestHost are checked', async () => {
  await expectCode(listenForward('p', { root, guestPort: 0 }), VcError, 'INVALID_CONFIG', /^guestPort: .* got 0$/);
  await expectCode(listenForward('p', { root, guestPort: 80, hostPort: -1 }), VcError, 'INVALID_CONFIG', /^hostPort: expected an integer 0\.\.65535, got -1$/);
  await expectCode(listenForward('p', { root, guestPort: 80, hostAddr: 'any' }), VcError, 'INVALID_CONFIG', /^hostAddr: .* got "any"$/);
  await expectCode(listenForward('p', { root, guestPort: 80, guestHost: '::g' }), VcError, 'INVALID_CONFIG', /^guestHost: .* got "::g"$/);
  await expectCode(listenForward('p', { root, guestPort: 80, hostPort: 0 }), VcError, 'POD_NOT_FOUND');
});

test.run();
