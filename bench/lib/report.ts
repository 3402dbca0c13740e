// Writers for bench/results: the Markdown table and the SVG chart (hand-written, no dependencies),
// and the dated file name. Pure functions of a BenchResults object.
import { renderContainerdMarkdown } from '../containerd-format.js';
import { networkPanels, renderNetworkMarkdown } from '../network-format.js';
import { renderTemplatesMarkdown } from '../templates-format.js';
import type { BenchResults, StartVariant, Where } from './results.js';
import type { Summary } from './stats.js';
import { TARGETS, type TargetResult } from './targets.js';

/** `YYYY-MM-DD-HHMM` in UTC: the dated copy's name. */
export function resultStamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getUTCFullYear()}-${p(date.getUTCMonth() + 1)}-${p(date.getUTCDate())}-${p(date.getUTCHours())}${p(date.getUTCMinutes())}`;
}

/** A number for a table cell: 3 significant digits, thousands kept whole; '—' for none. */
export function fmt(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const abs = Math.abs(v);
  const s = abs >= 100 ? String(Math.round(v)) : abs >= 10 ? v.toFixed(1) : abs >= 1 ? v.toFixed(2) : v.toPrecision(2);
  return unit ? `${s} ${unit}` : s;
}

function fmtSummary(s: Summary | null | undefined): [string, string] {
  if (!s || s.n === 0) return ['—', '—'];
  return [fmt(s.median), fmt(s.p95)];
}

export function escapeMd(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * The words after a section's heading: where it ran. In L1 times are inflated by emulation;
 * memory is not (the same binaries and page size), though L1's kernel is not this host's.
 */
export function whereText(where: Where | null | undefined, measures: 'times' | 'memory' = 'times'): string {
  if (where === 'l1') {
    return measures === 'memory'
      ? 'Ran in **L1** (the nested-KVM harness: a QEMU TCG VM whose kvm_amd runs the guests). Memory is not inflated by the emulation, but L1\'s kernel (e.g. its transparent huge pages) is not this host\'s.'
      : 'Ran in **L1** (the nested-KVM harness: a QEMU TCG VM whose kvm_amd runs the guests): absolute times are inflated by the emulation and do not compare with L0; compare ratios.';
  }
  if (where === 'l0') return 'Ran on this host (**L0**).';
  return 'Did not run.';
}

export function targetRow(name: string, t: TargetResult): string {
  // Not measured (no figure) is not the same as measured but undecided (e.g. a capped count).
  const verdict = t.met === true ? '**met**' : t.met === false ? '**missed**' : t.measured === null ? 'not measured' : 'undecided';
  const missed = t.met === false
    ? `${fmt(t.missedBy)} ${t.unit}${t.missedFactor !== null ? ` (${fmt(t.missedFactor)}× off)` : ''}`
    : t.met === true ? '—' : '';
  const missedAndNote = [missed, t.note ? escapeMd(t.note) : ''].filter(Boolean).join(' ');
  const measured = t.measured === null ? '—' : `${fmt(t.measured)} ${t.unit}`;
  return `| ${escapeMd(t.description)} (\`${name}\`) | ${measured} | ${t.op} ${t.target} ${t.unit} | ${verdict} | ${missedAndNote} | ${t.judgedBy}: ${escapeMd(t.basis)} |`;
}

function flatEntries(obj: unknown, prefix = ''): [string, string][] {
  if (obj === null || obj === undefined) return [];
  if (typeof obj !== 'object' || Array.isArray(obj)) return [[prefix, JSON.stringify(obj)]];
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v) && v.length > 4) continue; // raw samples: in latest.json
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length <= 12) out.push(...flatEntries(v, key));
    else out.push([key, typeof v === 'number' ? fmt(v) : JSON.stringify(v)]);
  }
  return out;
}

export const PUBLISHED_ANCHORS = [
  ['Firecracker', 'VMM start', '≤ 8 CPU-ms'],
  ['Firecracker', 'start to guest init', '≤ 125 ms'],
  ['Firecracker', 'VMM memory overhead', '≤ 5 MiB per VM'],
  ['Firecracker', 'VM creation rate', '5 VMs/s per core'],
  ['Cloud Hypervisor', 'VMM init', '≈ 44 ms'],
  ['Cloud Hypervisor', 'start to guest userspace', '≈ 134 ms'],
] as const;

export function renderMarkdown(r: BenchResults): string {
  const L: string[] = [];
  L.push(`# Benchmark results — ${r.date} (${r.mode}${r.only ? `, only ${r.only.join(',')}` : ''})`, '');
  L.push(`Host: ${r.host.cpuModel}, ${r.host.cores} cores, ${r.host.memoryGiB} GiB, Linux ${r.host.kernel}, /dev/kvm ${r.host.kvmFlavor}, ` +
    `${r.host.qemuVersion ?? 'no QEMU'}, Node ${r.host.node}; load average at start ${r.host.loadAverage.join(' ')}. Run took ${fmt(r.durationSeconds)} s` +
    `${r.gitHead ? ` at ${r.gitHead}` : ''}.`, '');
  if (r.l1) {
    const h = r.l1.host;
    L.push(`**The host sections (VMM start, memory, density) ran in L1**, not on this host, because it cannot run the test guests (${escapeMd(r.l1.why)}). ` +
      `L1: the nested-KVM harness's QEMU TCG VM with an emulated EPYC+SVM CPU, ${h.cores} vCPUs, ${h.memoryGiB} GiB, Linux ${h.kernel}, /dev/kvm ${h.kvmFlavor}, ${h.qemuVersion ?? 'no QEMU'}; ` +
      `booted in ${fmt(r.l1.bootSeconds)} s, ${fmt(r.l1.totalSeconds)} s in all. The same side-by-side method runs there (QEMU on L1's KVM beside the built-in VMM, the KVM floor measured in L1), ` +
      'but L1\'s kernel, the VMMs\' own code and every VM exit are emulated instruction by instruction: **absolute times from L1 are not comparable with L0 figures** (nor with the published anchors); ' +
      'the ratios are, and the targets are judged from them (see "judged by" under Targets).', '');
    if (r.l1.rerunAfter) L.push(`An earlier L1 stopped before these sections were done (${escapeMd(r.l1.rerunAfter)}): they ran again in a fresh L1, whose figures these are.`, '');
    if (r.l1.failed) L.push(`**L1 failed before the end** (${escapeMd(r.l1.failed)}): the sections it had reported are kept; the others say they did not finish.`, '');
    if (r.l1.scaled.length) L.push(`What L1's plan does differently from L0's (bench/lib/plan.ts): ${r.l1.scaled.map(escapeMd).join('; ')}.`, '');
  }

  const s = r.vmmStart;
  L.push('## VMM start', '', whereText(s.where), '');
  if (s.skipped || s.error) L.push(`${s.skipped ? `Skipped: ${s.skipped}` : `Failed: ${s.error}`}`, '');
  else {
    L.push(`Guest: \`${s.guest.image}\` \`${s.guest.cmdline}\`, ${s.guest.memoryMiB} MiB, ${s.guest.vcpus} vCPU; ${s.runs} runs of each, interleaved. ` +
      `QEMU accelerator: **${s.qemuAccel ?? 'none'}** (${escapeMd(s.qemuAccelNote)}).`, '');
    L.push('| variant | first guest instruction, median ms | p95 ms | serial "ready", median ms | p95 ms | failures |', '|---|---|---|---|---|---|');
    if (s.kvmFloorMs) L.push(`| KVM floor (create VM + RAM slot + 1 vCPU, no guest code) | ${fmtSummary(s.kvmFloorMs).join(' | ')} | — | — | 0 |`);
    for (const [name, v] of Object.entries(s.variants) as [string, StartVariant][]) {
      L.push(`| ${escapeMd(name)} | ${fmtSummary(v.firstInstructionMs).join(' | ')} | ${fmtSummary(v.readyMs).join(' | ')} | ${v.failures.length} |`);
    }
    for (const [name, v] of Object.entries(s.variants) as [string, StartVariant][])
      if (v.parts) L.push('', `${escapeMd(name)}, parts of the first-instruction time (median / p95 ms): ${Object.entries(v.parts).map(([k, p]) => `${k} ${fmt(p.median)} / ${fmt(p.p95)}`).join('; ')}.`);
    L.push('', `Speedup vs QEMU (${s.qemuAccel ?? '—'}), first instruction: **${fmt(s.speedupVsQemu)}×** spawned${s.speedupVsQemuLauncher !== undefined ? `, **${fmt(s.speedupVsQemuLauncher ?? null)}×** through the pre-forked launcher` : ''}; to "ready": ${fmt(s.speedupVsQemuReady)}× spawned.`, '');
    for (const n of s.notes) L.push(`- ${n}`);
    if (s.notes.length) L.push('');
  }

  const m = r.memory;
  L.push('## Memory per VM', '', whereText(m.where, 'memory'), '');
  if (m.skipped || m.error) L.push(`${m.skipped ? `Skipped: ${m.skipped}` : `Failed: ${m.error}`}`, '');
  else {
    L.push(`Guest: ${m.guest}, ${m.guestMiB} MiB RAM each. Means per VM, MiB. "Non-guest" = RSS or PSS minus the resident part of the guest-RAM mapping.`, '');
    L.push('| hypervisor | VMs | RSS | PSS | guest RAM resident | non-guest RSS | non-guest PSS | MemAvailable drop / VM |', '|---|---|---|---|---|---|---|---|');
    for (const x of m.samples)
      L.push(`| ${x.hypervisor === 'qemu' ? `QEMU (${m.qemuAccel})` : 'built-in'} | ${x.vms} | ${fmt(x.rssMiB)} | ${fmt(x.pssMiB)} | ${fmt(x.guestRssMiB)} | ${fmt(x.nonGuestRssMiB)} | ${fmt(x.nonGuestPssMiB)} | ${fmt(x.memAvailableDropPerVmMiB)} |`);
    L.push('', `Overhead per VM at ${m.comparedAtVms ?? '—'} VMs, non-guest RSS: built-in **${fmt(m.builtinOverheadMiB)} MiB**, QEMU **${fmt(m.qemuOverheadMiB)} MiB**, ratio ${fmt(m.overheadRatio)}; ` +
      `non-guest PSS: built-in ${fmt(m.builtinOverheadPssMiB)} MiB, QEMU ${fmt(m.qemuOverheadPssMiB)} MiB, ratio ${fmt(m.overheadRatioPss)}.`, '');
    for (const n of m.notes) L.push(`- ${n}`);
    if (m.notes.length) L.push('');
  }

  const d = r.density;
  L.push('## Density', '', whereText(d.where), '');
  if (d.skipped || d.error) L.push(`${d.skipped ? `Skipped: ${d.skipped}` : `Failed: ${d.error}`}`, '');
  else {
    L.push('| concurrent vc-vmm processes | seconds to the last first guest exit | VMs/s | per-VM spawn → first exit, median ms | p95 ms | failures |', '|---|---|---|---|---|---|');
    for (const x of d.rate) L.push(`| ${x.vms} | ${fmt(x.seconds)} | ${fmt(x.vmsPerSecond)} | ${fmtSummary(x.perVmFirstExitMs).join(' | ')} | ${x.failures} |`);
    L.push('', `VMs created per second (median of the runs): **${fmt(d.vmsPerSecond)}**.`, '');
    if (d.maxConcurrent) {
      const c = d.maxConcurrent;
      L.push(`Most VMs held at once: **${d.maxConcurrentVms ?? '—'}** (tried up to ${c.limit} in batches of ${c.batch}; stopped because: ${escapeMd(c.stoppedBecause)}; ` +
        `${fmt(c.seconds)} s to start them; MemAvailable dropped ${fmt(c.memAvailableDropMiB)} MiB; processes left after cleanup: ${c.leftoverProcesses}).`, '');
    }
    for (const n of d.notes) L.push(`- ${n}`);
    if (d.notes.length) L.push('');
  }

  L.push('## Pods (lifecycle and agent, from bench/pods.ts)', '');
  L.push(r.lifecycle.where === 'l1'
    ? 'The built-in VMM and QEMU-KVM ran in **L1** (the nested-KVM harness; absolute times inflated, compare ratios); QEMU-TCG on this host (L0), for reference.'
    : whereText(r.lifecycle.where), '');
  const pods = [...flatEntries(r.lifecycle, 'lifecycle'), ...flatEntries(r.agent, 'agent')];
  if (pods.length) {
    L.push('Copied from bench/pods.ts as it returned them (lists of raw samples are in latest.json only).', '');
    L.push('| key | value |', '|---|---|');
    for (const [k, v] of pods) L.push(`| ${escapeMd(k)} | ${escapeMd(v)} |`);
    L.push('');
  }
  for (const n of r.podNotes) L.push(`- ${n}`);
  if (r.podNotes.length) L.push('');

  if (r.network) {
    const where = r.network.where === 'l1'
      ? 'Ran in **L1** (the nested-KVM harness: a QEMU TCG VM whose kvm_amd runs both hypervisors\' pods, QEMU with -accel kvm): absolute figures are deflated many-fold by the emulation and do not compare with other hosts; compare the two hypervisors through the ratios.'
      : whereText(r.network.where);
    L.push(...renderNetworkMarkdown(r.network, where));
  }
  if (r.templates) L.push(...renderTemplatesMarkdown(r.templates, whereText(r.templates.where)));
  if (r.containerd) L.push(...renderContainerdMarkdown(r.containerd, whereText(r.containerd.where)));

  L.push('## Targets', '');
  L.push('Most targets are ratios of two figures measured in the same run and place (built-in ÷ QEMU, in-process start ÷ KVM floor, template ÷ cold boot), judged as stated on L0 and in L1 alike; each row names the figures behind its ratio, which are in the sections above. ' +
    'The others: memory per VM and VMs held at once are not times and are judged as stated; VMs/s is judged as stated on L0 and, in L1, as wall time per VM in KVM floors measured in L1.', '');
  if (Object.values(r.targets).some((t) => t.judgedBy === 'floor-multiple') || (s.where === 'l1' && r.targets.inprocessVsKvmFloor?.measured != null))
    L.push('Caution: the L1 floor is a noisy yardstick. It is kernel work with cross-vCPU synchronization (VM and vCPU creation under nested SVM), which load on L1\'s emulated vCPUs slows far more than a VMM\'s mostly single-threaded start: its median ranged from 2.6 to 20 ms across L1 runs on one machine on 2026-12-06 (bench/README.md, "Targets"). ' +
      'A verdict in KVM floors from L1 (the in-process start ÷ floor, VMs/s as floors per VM) is therefore indicative only; the QEMU ratios, measured side by side, are the firmer L1 figures.', '');
  L.push('| target | measured | target | verdict | missed by | judged by |', '|---|---|---|---|---|---|');
  for (const [name, t] of Object.entries(r.targets)) L.push(targetRow(name, t));
  L.push('');

  L.push('## Published anchors (published, not measured here)', '', '| project | figure | published |', '|---|---|---|');
  for (const [p, what, v] of PUBLISHED_ANCHORS) L.push(`| ${p} | ${what} | ${v} |`);
  L.push('');

  if (r.errors.length || r.notes.length) {
    L.push('## Notes and errors', '');
    for (const e of r.errors) L.push(`- error in ${e.section}: ${escapeMd(e.message)}`);
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }
  return L.join('\n');
}

// ---- SVG ----

export interface Bar {
  label: string;
  value: number | null;
  /** A second mark on the bar (e.g. p95), drawn as a whisker. */
  whisker?: number | null;
  color: string;
  /** Printed after the value. */
  suffix?: string;
}

export interface Panel {
  title: string;
  unit: string;
  scale: 'log' | 'linear';
  bars: Bar[];
  /** Vertical reference lines: a target, 1× … */
  marks?: { value: number; label: string }[];
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const W = 820, LABEL_W = 250, PLOT_W = 460, BAR_H = 18, GAP = 6, TITLE_H = 36, PAD = 16;

/** The x position (0..PLOT_W) of a value on a panel's scale. */
export function scaleX(value: number, lo: number, hi: number, scale: 'log' | 'linear'): number {
  if (!(value > 0) && scale === 'log') return 0;
  const t = scale === 'log' ? (Math.log10(value) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : (value - lo) / (hi - lo);
  return Math.max(0, Math.min(PLOT_W, t * PLOT_W));
}

function domain(panel: Panel): [number, number] {
  const vals = panel.bars.flatMap((b) => [b.value, b.whisker ?? null]).concat((panel.marks ?? []).map((m) => m.value))
    .filter((v): v is number => v !== null && Number.isFinite(v) && (panel.scale === 'linear' || v > 0));
  if (vals.length === 0) return panel.scale === 'log' ? [0.1, 10] : [0, 1];
  const max = Math.max(...vals);
  if (panel.scale === 'linear') return [0, max * 1.1];
  const lo = 10 ** Math.floor(Math.log10(Math.min(...vals)) - 0.3); // a bar near a decade's start stays visible
  const hi = 10 ** Math.ceil(Math.log10(max * 1.05));
  return [lo, hi > lo ? hi : lo * 10];
}

function renderPanel(panel: Panel, y0: number): { svg: string; height: number } {
  const [lo, hi] = domain(panel);
  const h = TITLE_H + panel.bars.length * (BAR_H + GAP) + 34;
  const x0 = PAD + LABEL_W;
  const out: string[] = [];
  out.push(`<text x="${PAD}" y="${y0 + 18}" class="title">${escapeXml(panel.title)}</text>`);
  const plotTop = y0 + TITLE_H, plotBottom = y0 + TITLE_H + panel.bars.length * (BAR_H + GAP);
  // Axis ticks: decades on a log scale, 5 steps on a linear one.
  const ticks: number[] = [];
  if (panel.scale === 'log') for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push(v);
  else for (let i = 0; i <= 5; i++) ticks.push(lo + ((hi - lo) * i) / 5);
  for (const t of ticks) {
    const x = x0 + scaleX(t, lo, hi, panel.scale);
    out.push(`<line x1="${x.toFixed(1)}" y1="${plotTop - 2}" x2="${x.toFixed(1)}" y2="${plotBottom}" class="grid"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${plotBottom + 14}" class="tick">${escapeXml(panel.scale === 'log' ? String(Number(t.toPrecision(3))) : fmt(t))}</text>`);
  }
  out.push(`<text x="${x0 + PLOT_W}" y="${plotBottom + 28}" class="unit">${escapeXml(panel.unit)}${panel.scale === 'log' ? ', log scale' : ''}</text>`);
  panel.bars.forEach((b, i) => {
    const y = plotTop + i * (BAR_H + GAP);
    out.push(`<text x="${x0 - 8}" y="${y + BAR_H - 5}" class="label">${escapeXml(b.label)}</text>`);
    if (b.value === null || !Number.isFinite(b.value)) {
      out.push(`<text x="${x0 + 4}" y="${y + BAR_H - 5}" class="value">not measured</text>`);
      return;
    }
    const w = Math.max(1, scaleX(b.value, lo, hi, panel.scale));
    out.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${escapeXml(b.color)}"/>`);
    let textX = x0 + w + 4;
    if (b.whisker !== undefined && b.whisker !== null && Number.isFinite(b.whisker)) {
      const wx = x0 + scaleX(b.whisker, lo, hi, panel.scale);
      out.push(`<line x1="${(x0 + w).toFixed(1)}" y1="${y + BAR_H / 2}" x2="${wx.toFixed(1)}" y2="${y + BAR_H / 2}" class="whisker"/>`);
      out.push(`<line x1="${wx.toFixed(1)}" y1="${y + 3}" x2="${wx.toFixed(1)}" y2="${y + BAR_H - 3}" class="whisker"/>`);
      textX = Math.max(textX, wx + 4);
    }
    out.push(`<text x="${textX.toFixed(1)}" y="${y + BAR_H - 5}" class="value">${escapeXml(fmt(b.value))}${b.suffix ? escapeXml(b.suffix) : ''}</text>`);
  });
  for (const m of panel.marks ?? []) {
    const x = x0 + scaleX(m.value, lo, hi, panel.scale);
    out.push(`<line x1="${x.toFixed(1)}" y1="${plotTop - 4}" x2="${x.toFixed(1)}" y2="${plotBottom}" class="mark"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${plotTop - 5}" class="marklabel">${escapeXml(m.label)}</text>`);
  }
  return { svg: out.join('\n'), height: h };
}

export function renderSvg(panels: Panel[], caption: string): string {
  let y = PAD + 20;
  const body: string[] = [`<text x="${PAD}" y="${PAD + 8}" class="caption">${escapeXml(caption)}</text>`];
  for (const p of panels) {
    const { svg, height } = renderPanel(p, y);
    body.push(svg);
    y += height + 10;
  }
  const H = y + PAD;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    '<style>.title{font-weight:bold;font-size:13px}.caption{fill:#555;font-size:11px}.label{text-anchor:end}.value{fill:#222}' +
      '.tick{text-anchor:middle;fill:#666;font-size:10px}.unit{text-anchor:end;fill:#666;font-size:10px;font-style:italic}' +
      '.grid{stroke:#e3e3e3}.whisker{stroke:#333;stroke-width:1}.mark{stroke:#c00;stroke-dasharray:4 3}.marklabel{fill:#c00;font-size:10px;text-anchor:middle}</style>',
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

const BUILTIN = '#2b7bb9', QEMU = '#e08a2c', FLOOR = '#8a8a8a', OK = '#3a9a4a', BAD = '#c9443a', UNDECIDED = '#aaaaaa';

/** The chart of a results object: start times, memory overhead, and every target as measured ÷ target. */
export function resultPanels(r: BenchResults): Panel[] {
  const panels: Panel[] = [];
  const s = r.vmmStart;
  if (!s.skipped && !s.error) {
    const bars: Bar[] = [];
    if (s.kvmFloorMs) bars.push({ label: 'KVM floor (no guest code)', value: s.kvmFloorMs.median, whisker: s.kvmFloorMs.p95, color: FLOOR });
    for (const [name, v] of Object.entries(s.variants))
      bars.push({ label: name, value: v.firstInstructionMs.n ? v.firstInstructionMs.median : null, whisker: v.firstInstructionMs.n ? v.firstInstructionMs.p95 : null, color: name.startsWith('QEMU') ? QEMU : BUILTIN });
    // The in-process target is a multiple of the floor from the same run, so its mark is too (L0 or L1).
    const inL1 = s.where === 'l1';
    const floor = s.kvmFloorMs?.median;
    const limit = TARGETS.inprocessVsKvmFloor.target;
    panels.push({
      title: `Start request → first guest instruction (median, whisker to p95)${inL1 ? ', in L1: compare with the floor, not across hosts' : ''}`,
      unit: 'ms', scale: 'log', bars, ...(floor && floor > 0 ? { marks: [{ value: floor * limit, label: `${limit}× floor` }] } : {}),
    });
    const ready: Bar[] = Object.entries(s.variants).map(([name, v]) => ({ label: name, value: v.readyMs.n ? v.readyMs.median : null, whisker: v.readyMs.n ? v.readyMs.p95 : null, color: name.startsWith('QEMU') ? QEMU : BUILTIN }));
    panels.push({ title: `Start request → guest "ready" on the serial console (median, whisker to p95)${s.where === 'l1' ? ', in L1' : ''}`, unit: 'ms', scale: 'log', bars: ready });
  }
  const m = r.memory;
  if (!m.skipped && !m.error && m.samples.length) {
    panels.push({
      title: `VMM memory beyond guest RAM, per VM (RSS; ${m.guestMiB} MiB guests)${m.where === 'l1' ? ', in L1' : ''}`,
      unit: 'MiB',
      scale: 'log',
      bars: m.samples.map((x) => ({ label: `${x.hypervisor === 'qemu' ? `QEMU (${m.qemuAccel})` : 'built-in'} × ${x.vms}`, value: x.nonGuestRssMiB, color: x.hypervisor === 'qemu' ? QEMU : BUILTIN, suffix: ` (PSS ${fmt(x.nonGuestPssMiB)})` })),
      marks: [{ value: 3, label: '3 MiB' }],
    });
  }
  if (r.network) panels.push(...networkPanels(r.network));
  const tbars: Bar[] = Object.entries(r.targets).map(([name, t]) => {
    const ratio = t.measured === null ? null : t.op === '<=' ? (t.measured > 0 ? t.target / t.measured : null) : t.measured / t.target;
    return { label: name, value: ratio, color: t.met === true ? OK : t.met === false ? BAD : UNDECIDED, suffix: `× (${fmt(t.measured)} ${t.unit} vs ${t.op} ${t.target})` };
  });
  panels.push({ title: 'Targets: how far from each (≥ 1 = met; bar = target ÷ measured for limits, measured ÷ target for minimums)', unit: '×', scale: 'log', bars: tbars, marks: [{ value: 1, label: 'target' }] });
  return panels;
}
