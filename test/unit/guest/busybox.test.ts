import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBusybox, listApplets } from '../../../src/guest/busybox.js';
import { isStaticElf } from '../../../src/guest/elf.js';
import { GuestError } from '../../../src/guest/errors.js';
import { expectCode, withoutTools } from '../../helpers/errors.js';

const expectGuestCode = (promise: Promise<unknown>, code: string, message?: string | RegExp) => expectCode(promise, GuestError, code, message);

const scratch = mkdtempSync(join(tmpdir(), 'vc-busybox-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const dynamic = realpathSync(process.execPath); // node itself: a dynamically linked ELF



test('default: a static busybox on the host is used as is', async () => {
  const bb = await findBusybox({ cacheDir: join(scratch, 'unused') });
  assert.is(bb.source, 'host');
  assert.ok(['/bin/busybox', '/usr/bin/busybox'].includes(bb.path));
  assert.ok(isStaticElf(readFileSync(bb.path), bb.path));
  assert.ok(bb.applets.includes('bin/sh'));
  assert.ok(bb.applets.includes('usr/bin/env'));
  assert.ok(bb.applets.includes('sbin/insmod'));
  assert.not.ok(existsSync(join(scratch, 'unused')), 'nothing fetched');
});

test('a dynamic host busybox is passed over: busybox-static is fetched, then reused offline', async () => {
  const cache = join(scratch, 'cache');
  const messages: string[] = [];
  const started = Date.now();
  const fetched = await findBusybox({ candidates: [dynamic, '/nonexistent/busybox'], cacheDir: cache, onProgress: (m) => messages.push(m) });
  console.log(`  busybox-static fetch: ${Date.now() - started} ms`);
  assert.is(fetched.source, 'fetched');
  assert.ok(fetched.path.startsWith(join(cache, 'busybox', 'busybox-static_')), fetched.path);
  assert.ok(isStaticElf(readFileSync(fetched.path), fetched.path));
  assert.ok(fetched.applets.includes('bin/sh'));
  assert.equal(readdirSync(join(cache, 'busybox')).filter((n) => n.startsWith('.')), [], 'no temp dirs left');
  const again = await withoutTools(scratch, () => findBusybox({ candidates: [], cacheDir: cache }));
  assert.is(again.source, 'cache');
  assert.is(again.path, fetched.path);
  assert.equal(again.applets, fetched.applets);
});

test('no static busybox and no apt: BUSYBOX_UNAVAILABLE with advice', async () => {
  const err = await withoutTools(scratch, () => expectGuestCode(findBusybox({ candidates: [dynamic], cacheDir: join(scratch, 'empty') }), 'BUSYBOX_UNAVAILABLE'));
  assert.match(err.message, 'apt-get update');
  assert.match(err.message, dynamic);
  // Why apt failed, and the package to install on Debian/Ubuntu and on Fedora (no apt there).
  assert.match(err.message, 'apt-get is not installed');
  assert.match(err.message, /busybox-static on Debian and Ubuntu .*busybox on Fedora/);
});

test('a given path must exist and be a static ELF', async () => {
  const script = join(scratch, 'script');
  writeFileSync(script, '#!/bin/sh\n', { mode: 0o755 });
  await expectGuestCode(findBusybox({ path: '/nonexistent/bb' }), 'INVALID_OPTION', 'busybox: /nonexistent/bb does not exist');
  await expectGuestCode(findBusybox({ path: dynamic }), 'INVALID_OPTION', 'dynamically linked');
  await expectGuestCode(findBusybox({ path: script }), 'INVALID_OPTION', 'not an executable');
  const given = await findBusybox({ path: '/bin/busybox' });
  assert.is(given.source, 'given');
});

test('listApplets rejects paths that would escape the initrd tree', async () => {
  const fake = join(scratch, 'fake-busybox');
  writeFileSync(fake, '#!/bin/sh\necho bin/sh; echo ../../etc/evil\n', { mode: 0o755 });
  await expectGuestCode(listApplets(fake), 'INVALID_OPTION', '../../etc/evil');
  const ok = join(scratch, 'ok-busybox');
  writeFileSync(ok, '#!/bin/sh\nprintf "usr/bin/[\\nbin/sh\\nbin/sh\\n"\n', { mode: 0o755 });
  assert.equal(await listApplets(ok), ['bin/sh', 'usr/bin/[']);
});

test.run();
