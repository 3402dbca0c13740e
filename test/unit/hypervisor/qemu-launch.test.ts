import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { logTail } from '../../../src/hypervisor/qemu/launch.js';

test('logTail: a short log whole, a long one as its last 20 lines marked as cut, never past 4 KiB', () => {
  assert.is(logTail('  qemu: bad option\n'), 'qemu: bad option');
  assert.is(logTail(''), '');
  const lines = Array.from({ length: 50 }, (_, i) => `line ${i}`);
  const tail = logTail(lines.join('\n'));
  assert.ok(tail.startsWith('…line 30\n'), tail.slice(0, 20));
  assert.ok(tail.endsWith('line 49'));
  assert.is(tail.split('\n').length, 20);
  const huge = logTail(`${'x'.repeat(100_000)}\nqemu-system-x86_64: the last word`);
  assert.ok(huge.length <= 4097, String(huge.length));
  assert.ok(huge.endsWith('qemu-system-x86_64: the last word') && huge.startsWith('…'));
});

test.run();
