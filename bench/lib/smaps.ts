// Reading a VMM's memory from /proc/PID/smaps: its whole RSS and PSS, and the part of it that is
// guest RAM (the anonymous mapping whose size is the guest's memory), so that what is left is the
// VMM's own cost per VM.

export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  /** Path, [heap], [stack]…, or '' for an anonymous mapping. */
  name: string;
  sizeKiB: number;
  rssKiB: number;
  pssKiB: number;
}

export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | null = null;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3]!, name: head[4]!.trim(), sizeKiB: 0, rssKiB: 0, pssKiB: 0 };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const field = /^(Size|Rss|Pss):\s+(\d+) kB/.exec(line);
    if (!field) continue;
    const kib = Number(field[2]);
    if (field[1] === 'Size') cur.sizeKiB = kib;
    else if (field[1] === 'Rss') cur.rssKiB = kib;
    else cur.pssKiB = kib;
  }
  return out;
}

/**
 * The guest RAM mapping: an anonymous read-write mapping of exactly the guest's size (vc-vmm and
 * QEMU both map RAM that way); failing that, the anonymous one closest above it within 4 MiB
 * (alignment padding). null when there is none.
 */
export function findGuestMapping(maps: readonly Mapping[], guestMiB: number): Mapping | null {
  const want = guestMiB * 1024;
  const anon = maps.filter((m) => m.name === '' && m.perms.startsWith('rw'));
  const exact = anon.find((m) => m.sizeKiB === want);
  if (exact) return exact;
  const near = anon.filter((m) => m.sizeKiB > want && m.sizeKiB <= want + 4096).sort((a, b) => a.sizeKiB - b.sizeKiB);
  return near[0] ?? null;
}

export interface VmmMemory {
  rssKiB: number;
  pssKiB: number;
  guestRssKiB: number;
  guestPssKiB: number;
  /** RSS / PSS minus the resident part of guest RAM: what the VMM itself costs. */
  nonGuestRssKiB: number;
  nonGuestPssKiB: number;
  guestMappingFound: boolean;
}

export function vmmMemory(smapsText: string, guestMiB: number): VmmMemory {
  const maps = parseSmaps(smapsText);
  const rss = maps.reduce((a, m) => a + m.rssKiB, 0);
  const pss = maps.reduce((a, m) => a + m.pssKiB, 0);
  const guest = findGuestMapping(maps, guestMiB);
  const guestRss = guest?.rssKiB ?? 0;
  const guestPss = guest?.pssKiB ?? 0;
  return {
    rssKiB: rss,
    pssKiB: pss,
    guestRssKiB: guestRss,
    guestPssKiB: guestPss,
    nonGuestRssKiB: rss - guestRss,
    nonGuestPssKiB: pss - guestPss,
    guestMappingFound: guest !== null,
  };
}

/** MemAvailable from /proc/meminfo text, KiB (NaN when absent). */
export function memAvailableKiB(meminfo: string): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(meminfo);
  return m ? Number(m[1]) : Number.NaN;
}
