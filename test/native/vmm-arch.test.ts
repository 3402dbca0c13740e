// The VMM's x86 boot structures and ACPI tables: every C++ `arch` unit test becomes a uvu test, and
// the tables `vc-vmm dump-acpi` writes are checked here (checksums, pointers between tables) and
// by ACPICA's iasl: each table disassembles without error, says what we meant, and recompiles to
// the very same bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { registerCppTests } from '../helpers/vmm-unit.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const unitTests = join(root, 'build/Release/vmm-unit-tests');
const vcVmm = join(root, 'build/Release/vc-vmm');

// --- The C++ unit tests: one uvu test per `ok NAME` / `FAIL NAME: …` line. ---

registerCppTests('arch');

// --- dump-acpi and iasl. ---

const dir = tempDir('vc-acpi');
test.after(() => dir.remove());
const TABLES = ['RSDP', 'XSDT', 'FACP', 'APIC', 'DSDT'] as const;
type Name = (typeof TABLES)[number];
let dumped: { bytes: Record<Name, Buffer>; addr: Record<Name, bigint> } | undefined;

function dump() {
  if (dumped) return dumped;
  assert.ok(existsSync(vcVmm), `${vcVmm} is missing; run npm run build:native`);
  const run = spawnSync(vcVmm, ['dump-acpi', '--vcpus', '2', '--slots', '4', dir.path], { encoding: 'utf8' });
  assert.is(run.status, 0, `dump-acpi failed: ${run.stderr}`);
  const bytes = {} as Record<Name, Buffer>, addr = {} as Record<Name, bigint>;
  for (const name of TABLES) {
    const file = join(dir.path, `${name}.dat`);
    assert.ok(existsSync(file), `${file} was not written`);
    bytes[name] = readFileSync(file);
    const line = new RegExp(`/${name}\\.dat (0x[0-9a-f]+) (\\d+)$`, 'm').exec(run.stdout);
    assert.ok(line?.[1], `dump-acpi printed no line for ${name}: ${run.stdout}`);
    addr[name] = BigInt(line[1]);
    assert.is(Number(line[2]), bytes[name].length);
  }
  return (dumped = { bytes, addr });
}

const sum = (b: Buffer) => b.reduce((s, x) => (s + x) & 0xff, 0);
const hex = (v: bigint, width: number) => v.toString(16).toUpperCase().padStart(width, '0');

function iasl(args: string[]) {
  const r = spawnSync('iasl', args, { cwd: dir.path, encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    assert.unreachable('iasl is not installed (Debian package acpica-tools)');
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function disassemble(name: Name): string {
  const r = iasl(['-d', `${name}.dat`]);
  assert.is(r.status, 0, `iasl -d ${name}.dat failed:\n${r.out}`);
  assert.not.match(r.out, /\b(error|warning)\b/i, `iasl -d ${name}.dat complained:\n${r.out}`);
  return readFileSync(join(dir.path, `${name}.dsl`), 'utf8');
}

// Compiles `source` (a .dsl file in dir) and returns the table iasl produced.
function compile(source: string, name: string): Buffer {
  const r = iasl(['-p', join(dir.path, `re-${name}`), source]);
  assert.is(r.status, 0, `iasl ${source} failed:\n${r.out}`);
  assert.match(r.out, /Compilation successful\. 0 Errors, 0 Warnings/);
  return readFileSync(join(dir.path, `re-${name}.aml`));
}

test('dump-acpi: every table has a valid checksum, length and signature', () => {
  const { bytes } = dump();
  for (const name of TABLES) {
    const b = bytes[name];
    if (name === 'RSDP') {
      assert.is(b.subarray(0, 8).toString('latin1'), 'RSD PTR ');
      assert.is(b.length, 36);
      assert.is(sum(b.subarray(0, 20)), 0, 'RSDP checksum (first 20 bytes)');
      assert.is(sum(b), 0, 'RSDP extended checksum');
      assert.is(b[15], 2, 'RSDP revision');
      continue;
    }
    assert.is(b.subarray(0, 4).toString('latin1'), name);
    assert.is(b.readUInt32LE(4), b.length, `${name} length`);
    assert.is(sum(b), 0, `${name} checksum`);
  }
});

test('dump-acpi: RSDP -> XSDT -> FADT, MADT; FADT -> DSDT; all in 0xe0000..0xfffff', () => {
  const { bytes, addr } = dump();
  assert.is(addr.RSDP, 0xe0000n);
  assert.is(bytes.RSDP.readBigUInt64LE(24), addr.XSDT);
  assert.is(bytes.XSDT.length, 36 + 16);
  assert.is(bytes.XSDT.readBigUInt64LE(36), addr.FACP);
  assert.is(bytes.XSDT.readBigUInt64LE(44), addr.APIC);
  assert.is(bytes.FACP.readBigUInt64LE(140), addr.DSDT);
  for (const name of TABLES) {
    assert.ok(addr[name] >= 0xe0000n && addr[name] + BigInt(bytes[name].length) <= 0x100000n, `${name} placement`);
  }
});

test('iasl: the DSDT has 4 LNRO0005 devices with their MMIO window and GSI', () => {
  const dsl = disassemble('DSDT');
  assert.is(dsl.match(/Name \(_HID, "LNRO0005"\)/g)?.length, 4);
  for (let slot = 0; slot < 4; slot++) {
    const block = new RegExp(`Device \\(VR0${slot}\\)[\\s\\S]*?\\}\\)`).exec(dsl)?.[0];
    assert.ok(block, `Device VR0${slot} in:\n${dsl}`);
    assert.match(block, /"LNRO0005"/);
    assert.match(block, new RegExp(`Memory32Fixed \\(ReadWrite,\\s*0xD000${slot}000,\\s*// Address Base\\s*0x00001000,`));
    assert.match(block, /Interrupt \(ResourceConsumer, Edge, ActiveHigh, Exclusive/);
    assert.match(block, new RegExp(`0x0000000${5 + slot},`));
  }
  assert.match(dsl, /Device \(COM1\)[\s\S]*EisaId \("PNP0501"\)[\s\S]*0x03F8,[\s\S]*IRQNoFlags \(\)\s*\{4\}/);
});

test('iasl: the MADT lists 2 local APICs and the IOAPIC', () => {
  const dsl = disassemble('APIC');
  assert.is(dsl.match(/Subtable Type : 00 \[Processor Local APIC\]/g)?.length, 2);
  assert.match(dsl, /Local Apic ID : 00/);
  assert.match(dsl, /Local Apic ID : 01/);
  assert.is(dsl.match(/Subtable Type : 01 \[I\/O APIC\]/g)?.length, 1);
  assert.match(dsl, /Address : FEC00000/);
  assert.match(dsl, /Local Apic Address : FEE00000/);
});

test('iasl: the FADT is hardware-reduced and points at the DSDT', () => {
  const { addr } = dump();
  const dsl = disassemble('FACP');
  assert.match(dsl, /Revision : 06/);
  assert.match(dsl, /Hardware Reduced \(V5\) : 1/);
  assert.match(dsl, new RegExp(`DSDT Address : ${hex(addr.DSDT, 16)}`));
});

test('iasl: the XSDT lists the FADT and the MADT', () => {
  const { addr } = dump();
  const dsl = disassemble('XSDT');
  assert.match(dsl, new RegExp(`ACPI Table Address   0 : ${hex(addr.FACP, 16)}`));
  assert.match(dsl, new RegExp(`ACPI Table Address   1 : ${hex(addr.APIC, 16)}`));
});

test('iasl: recompiling each disassembled table gives back the same bytes', () => {
  const { bytes } = dump();
  for (const name of ['XSDT', 'FACP', 'APIC', 'DSDT'] as const) {
    disassemble(name);
    const again = compile(`${name}.dsl`, name);
    // iasl puts its own compiler id into the header (so the checksum differs too); the rest is ours.
    assert.is(again.length, bytes[name].length, `${name} length`);
    assert.ok(again.subarray(36).equals(bytes[name].subarray(36)), `${name} body differs after an iasl round trip`);
    assert.ok(again.subarray(10, 28).equals(bytes[name].subarray(10, 28)), `${name} OEM fields`);
  }
});

test('iasl: the RSDP, compiled from its fields, is byte for byte ours (checksums included)', () => {
  // iasl -d cannot read a raw RSDP (its binary reader wants a 4-character table signature), so
  // the check runs the other way: iasl's data-table compiler builds an RSDP from our field values
  // and computes both checksums itself.
  const { bytes } = dump();
  const b = bytes.RSDP;
  const source = [
    '[0008] Signature : "RSD PTR "',
    '[0001] Checksum : 00',
    `[0006] Oem ID : "${b.subarray(9, 15).toString('latin1')}"`,
    `[0001] Revision : ${hex(BigInt(b[15] ?? 0), 2)}`,
    `[0004] RSDT Address : ${hex(BigInt(b.readUInt32LE(16)), 8)}`,
    `[0004] Length : ${hex(BigInt(b.readUInt32LE(20)), 8)}`,
    `[0008] XSDT Address : ${hex(b.readBigUInt64LE(24), 16)}`,
    '[0001] Extended Checksum : 00',
    '[0003] Reserved : 000000',
    '',
  ].join('\n');
  writeFileSync(join(dir.path, 'rsdp-fields.asl'), source);
  const compiled = compile('rsdp-fields.asl', 'RSDP');
  assert.ok(compiled.equals(b), `iasl built ${compiled.toString('hex')}, we wrote ${b.toString('hex')}`);
});

test('acpiexec loads the DSDT into a namespace with the 4 virtio devices', () => {
  dump();
  const r = spawnSync('acpiexec', ['-b', 'namespace', 'DSDT.dat', 'FACP.dat', 'APIC.dat'], {
    cwd: dir.path, encoding: 'utf8', timeout: 30_000,
  });
  if (r.error) assert.unreachable(`acpiexec (acpica-tools) did not run: ${r.error.message}`);
  const out = `${r.stdout}${r.stderr}`;
  assert.is(r.status, 0, out);
  assert.not.match(out, /\b(error|warning|exception)\b/i, out);
  assert.is(out.match(/_HID String .* "LNRO0005"/g)?.length, 4, out);
});

test('dump-acpi rejects bad arguments with a message naming them', () => {
  assert.ok(existsSync(vcVmm), `${vcVmm} is missing`);
  const cases: [string[], RegExp][] = [
    [['--vcpus', '0', '--slots', '1', dir.path], /--vcpus 0 is not a number in 1\.\.254/],
    [['--vcpus', '2', '--slots', '20', dir.path], /--slots 20 is not a number in 0\.\.19/],
    [['--vcpus', 'x', '--slots', '1', dir.path], /--vcpus x/],
    [['--vcpus', '2', dir.path], /required/],
    [['--vcpus', '2', '--slots', '1', '--bogus', dir.path], /unexpected argument --bogus/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(vcVmm, ['dump-acpi', ...args], { encoding: 'utf8' });
    assert.is(r.status, 2, `dump-acpi ${args.join(' ')}`);
    assert.match(r.stderr, message);
  }
});

test.run();
