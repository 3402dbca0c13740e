// `virtc pod port-forward --id ID [HOSTADDR:]HOSTPORT:GUESTPORT...`: host TCP listeners whose
// connections reach the guest's 127.0.0.1:GUESTPORT over the agent channel (listenForward).
import { isIP } from 'node:net';
import { hostPortName, listenForward, type PortListener } from '../api/port-listen.js';
import { optionalString, parseSpec, requireString, UsageError, type CommandSpec } from './args.js';

export const portForwardSpec = {
  words: 'pod port-forward',
  options: { id: { type: 'string', usage: '--id ID' } },
  tail: '[HOSTADDR:]HOSTPORT:GUESTPORT...',
} satisfies CommandSpec;

export interface PortMapping {
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

/**
 * `[HOSTADDR:]HOSTPORT:GUESTPORT`: HOSTADDR an IPv4 address or a bracketed IPv6 one ([::1]),
 * default 127.0.0.1; HOSTPORT 0..65535 (0: any free port); GUESTPORT 1..65535. The error names
 * the value and what is wrong with it.
 */
export function parseMapping(text: string): PortMapping {
  const bad = (why: string): UsageError =>
    new UsageError(`port mapping ${JSON.stringify(text)}: ${why} (expected [HOSTADDR:]HOSTPORT:GUESTPORT, e.g. 8080:80 or 0.0.0.0:8080:80)`);
  let hostAddr = '127.0.0.1';
  let rest = text;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') throw bad('an IPv6 address must be closed by "]:"');
    hostAddr = text.slice(1, close);
    if (isIP(hostAddr) !== 6) throw bad(`${JSON.stringify(hostAddr)} is not an IPv6 address`);
    rest = text.slice(close + 2);
    if (rest.split(':').length !== 2) throw bad('HOSTPORT:GUESTPORT must follow the address');
  } else {
    const parts = text.split(':');
    if (parts.length === 3) {
      hostAddr = parts[0]!;
      if (isIP(hostAddr) !== 4) throw bad(`${JSON.stringify(hostAddr)} is not an IPv4 address (write an IPv6 one as [ADDR])`);
      rest = parts.slice(1).join(':');
    } else if (parts.length !== 2) {
      throw bad(parts.length < 2 ? 'a guest port is required' : 'too many ":"');
    }
  }
  const [hostText, guestText] = rest.split(':') as [string, string];
  const port = (what: string, value: string, min: number): number => {
    if (!/^\d{1,5}$/.test(value) || Number(value) < min || Number(value) > 65535) {
      throw bad(`${what} ${JSON.stringify(value)} is not a port number ${min}..65535`);
    }
    return Number(value);
  };
  return { hostAddr, hostPort: port('HOSTPORT', hostText, 0), guestPort: port('GUESTPORT', guestText, 1) };
}

export async function portForward(argv: string[]): Promise<number> {
  const { values, positionals, usage } = parseSpec(argv, portForwardSpec);
  const id = requireString(values.id, '--id', usage);
  if (positionals.length === 0) throw new UsageError(`at least one [HOSTADDR:]HOSTPORT:GUESTPORT is required\nusage: ${usage}`);
  const mappings = positionals.map(parseMapping);
  const root = optionalString(values.root);
  const listeners: PortListener[] = [];
  const closeAll = () => Promise.all(listeners.map((l) => l.close()));
  try {
    for (const m of mappings) {
      const name = `${hostPortName(m.hostAddr, m.hostPort)} -> ${m.guestPort}`;
      listeners.push(await listenForward(id, {
        root, ...m,
        onConnectionError: (err, from) => {
          const code = (err as { code?: string }).code;
          process.stderr.write(`virtc: port-forward ${name}: connection from ${from}: ${err.message}${code ? ` [${code}]` : ''}\n`);
        },
      }));
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  for (const l of listeners) {
    console.log(`listening on ${hostPortName(l.address, l.port)} -> guest ${hostPortName(l.guestHost, l.guestPort)}`);
  }
  // Until SIGINT/SIGTERM (exit 0) or the pod stops (its error, exit 1).
  const signalled = new Promise<null>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(null));
  });
  const reason = await Promise.race([signalled, ...listeners.map((l) => l.done)]);
  await closeAll();
  if (reason) throw reason;
  return 0;
}
