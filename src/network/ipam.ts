// The leases host-local keeps (`<dataDir>/<network name>/<ip>`, content "<container id>\r\n<ifname>"),
// for gc: a lease whose container id names no pod of the root belongs to a pod whose DEL never ran;
// `cniDel(planAttachment(containerId, <its netns path or ''>, conflist, ifName))` releases it.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';

export interface IpamLease {
  address: string;
  containerId: string;
  ifName: string;
  path: string;
}

/** The leases of `network` under host-local's `dataDir`; [] when there are none (or no directory). */
export async function ipamLeases(dataDir: string, network: string): Promise<IpamLease[]> {
  const dir = join(dataDir, network);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const leases: IpamLease[] = [];
  for (const name of names.sort()) {
    if (isIP(name) === 0) continue; // lock, last_reserved_ip.N
    const path = join(dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    const [containerId = '', ifName = ''] = text.split(/\r?\n/);
    leases.push({ address: name, containerId: containerId.trim(), ifName: ifName.trim(), path });
  }
  return leases;
}
