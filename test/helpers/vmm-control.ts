// Talking to a vc-vmm directly in tests: one control-socket request and its raw reply (errors
// included, which src/hypervisor/kvm/control.ts turns into exceptions), and whether a VMM pid lives.
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';

/** One request on a vc-vmm control socket; resolves with the reply object as sent. */
export async function vmmControl(path: string, req: Record<string, unknown>): Promise<any> {
  const sock: Socket = createConnection(path);
  await new Promise<void>((res, rej) => { sock.on('connect', res); sock.on('error', rej); });
  let buf = '';
  const line = await new Promise<string>((resolve, reject) => {
    sock.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    sock.on('error', reject);
    sock.write(JSON.stringify(req) + '\n');
  });
  sock.end();
  return JSON.parse(line);
}

/** A detached VMM is reparented to PID 1, which may reap it late: a zombie counts as gone. */
export function vmmAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}
