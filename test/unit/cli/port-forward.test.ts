// `virtc pod port-forward` mappings: [HOSTADDR:]HOSTPORT:GUESTPORT, and errors naming the value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMapping } from '../../../src/cli/port-forward-command.js';
import { UsageError } from '../../../src/cli/args.js';
import { podUsage } from '../../../src/cli/pod-commands.js';
import { main } from '../../../src/cli/main.js';

test('mappings: host port and guest port, an optional IPv4 or [IPv6] host address', () => {
  assert.equal(parseMapping('8080:80'), { hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 });
  assert.equal(parseMapping('0:80'), { hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80 });
  assert.equal(parseMapping('0.0.0.0:8080:80'), { hostAddr: '0.0.0.0', hostPort: 8080, guestPort: 80 });
  assert.equal(parseMapping('[::1]:65535:1'), { hostAddr: '::1', hostPort: 65535, guestPort: 1 });
  assert.equal(parseMapping('[::]:0:443'), { hostAddr: '::', hostPort: 0, guestPort: 443 });
});

test('bad mappings are usage errors naming the value and what is wrong', () => {
  const cases: [string, string][] = [
    ['80', 'a guest port is required'],
    ['', 'a guest port is required'],
    ['1:2:3:4', 'too many ":"'],
    ['8080:0', 'GUESTPORT "0" is not a port number 1..65535'],
    ['8080:65536', 'GUESTPORT "65536" is not a port number'],
    ['65536:80', 'HOSTPORT "65536" is not a port number 0..65535'],
    ['x:80', 'HOSTPORT "x"'],
    [':80', 'HOSTPORT ""'],
    ['8080:', 'GUESTPORT ""'],
    ['8080:-1', 'GUESTPORT "-1"'],
    ['8080:8e1', 'GUESTPORT "8e1"'],
    ['localhost:8080:80', '"localhost" is not an IPv4 address'],
    ['::1:8080:80', 'too many ":"'],
    ['[::1:8080:80', 'must be closed by "]:"'],
    ['[1.2.3.4]:8080:80', '"1.2.3.4" is not an IPv6 address'],
    ['[::1]:8080', 'HOSTPORT:GUESTPORT must follow the address'],
  ];
  for (const [text, why] of cases) {
    try {
      parseMapping(text);
      assert.unreachable(`${JSON.stringify(text)} was accepted`);
    } catch (err) {
      assert.instance(err, UsageError);
      const message = (err as Error).message;
      assert.ok(message.startsWith(`port mapping ${JSON.stringify(text)}: `), message);
      assert.ok(message.includes(why), `${message} should say ${why}`);
    }
  }
});

test('the command is in the usage, and usage errors exit 2 before any pod is looked at', async () => {
  assert.match(podUsage, 'virtc pod port-forward --id ID [HOSTADDR:]HOSTPORT:GUESTPORT...');
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string) => { stderr += chunk; return true; }) as typeof process.stderr.write;
  try {
    assert.is(await main(['pod', 'port-forward', '--id', 'nope', '8080']), 2);
    assert.match(stderr, 'port mapping "8080"');
    assert.is(await main(['pod', 'port-forward', '--id', 'nope']), 2);
    assert.match(stderr, 'at least one [HOSTADDR:]HOSTPORT:GUESTPORT is required');
    assert.is(await main(['pod', 'port-forward', '8080:80']), 2);
    assert.match(stderr, '--id is required');
  } finally {
    process.stderr.write = write;
  }
});

test.run();
