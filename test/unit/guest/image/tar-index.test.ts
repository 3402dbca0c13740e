// The outer-archive reader: members found by name without reading data, links followed inside
// the archive only, truncation and garbage reported with the archive's path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestError } from '../../../../src/guest/errors.js';
import { archiveFiles } from '../../../../src/guest/image/files.js';
import { indexTar } from '../../../../src/guest/image/tar-index.js';
import { expectCode } from '../../../helpers/errors.js';
import { makeTar } from './fixtures.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-image-tar-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

test('members by name: ./ prefixes, pax long names, symlinks and hardlinks within the archive', async () => {
  const long = `${'n'.repeat(90)}/${'m'.repeat(90)}.json`;
  const path = join(scratch, 'a.tar');
  writeFileSync(path, await makeTar([
    { name: './dir/', type: 'directory' },
    { name: './dir/blob', type: 'file', data: 'blob data' },
    { name: long, type: 'file', data: '{}' },
    { name: 'id/layer.tar', type: 'symlink', linkname: '../dir/blob' },
    { name: 'hard', type: 'link', linkname: 'dir/blob' },
    { name: 'escape', type: 'symlink', linkname: '../../etc/passwd' },
    { name: 'empty', type: 'file', data: '' },
  ]));
  const files = await archiveFiles(path);
  assert.is((await files.read('dir/blob', 100)).toString(), 'blob data');
  assert.is((await files.read(long, 100)).toString(), '{}');
  assert.is((await files.read('id/layer.tar', 100)).toString(), 'blob data');
  assert.is((await files.read('hard', 100)).toString(), 'blob data');
  assert.is((await files.read('empty', 100)).length, 0);
  assert.is(await files.size('dir'), undefined, 'directories are not files');
  assert.is(await files.size('nothing'), undefined);
  await expectCode(files.read('escape', 100), GuestError, 'IMAGE_UNSAFE', /"escape" links to "\.\.\/\.\.\/etc\/passwd", outside the archive/);
  await expectCode(files.read('nothing', 100), GuestError, 'IMAGE_INVALID', /a\.tar:nothing: missing/);
  await expectCode(files.read('dir/blob', 4), GuestError, 'IMAGE_INVALID', /more than the 4/);
  const chunks: Buffer[] = [];
  for await (const c of await files.open('dir/blob')) chunks.push(c as Buffer);
  assert.is(Buffer.concat(chunks).toString(), 'blob data');
});

test('truncated archives, bad checksums and missing files are clear errors', async () => {
  const good = await makeTar([{ name: 'a', type: 'file', data: 'x'.repeat(2000) }]);
  const cut = join(scratch, 'cut.tar');
  writeFileSync(cut, good.subarray(0, 1500));
  await expectCode(indexTar(cut), GuestError, 'IMAGE_INVALID', /cut\.tar: not a valid tar archive: truncated/);
  const garbage = join(scratch, 'garbage.tar');
  writeFileSync(garbage, Buffer.alloc(2048, 'g'));
  await expectCode(indexTar(garbage), GuestError, 'IMAGE_INVALID', /garbage\.tar: not a valid tar archive/);
  await expectCode(indexTar(join(scratch, 'none.tar')), GuestError, 'IMAGE_NOT_FOUND', /none\.tar/);
  // No end-of-archive blocks after a complete member: tolerated, like GNU tar.
  const noEnd = join(scratch, 'noend.tar');
  writeFileSync(noEnd, good.subarray(0, 512 + 2048));
  assert.equal((await indexTar(noEnd)).names(), ['a']);
});

test.run();
