// An independent classic-BPF interpreter over struct seccomp_data, written from the kernel's
// description (Documentation/networking/filter.rst, kernel/seccomp.c), not from the compiler: it
// decodes the raw bytes, checks what the kernel's checker checks (jumps inside the program, aligned
// loads inside seccomp_data, a ret at the end of every path) and runs the program.

export interface SeccompData { nr: number; arch: number; ip?: bigint; args?: readonly bigint[] }

export interface Run { result: number; steps: number }

const SECCOMP_DATA_SIZE = 64;

/** Little-endian struct seccomp_data: nr, arch (u32), instruction_pointer, args[6] (u64). */
export function seccompData(d: SeccompData): Buffer {
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeUInt32LE(d.nr >>> 0, 0);
  buf.writeUInt32LE(d.arch >>> 0, 4);
  buf.writeBigUInt64LE(d.ip ?? 0n, 8);
  (d.args ?? []).forEach((a, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  return buf;
}

interface Insn { code: number; jt: number; jf: number; k: number }

export function decode(filter: Buffer): Insn[] {
  if (filter.length === 0 || filter.length % 8 !== 0) throw new Error(`filter of ${filter.length} bytes is not whole sock_filters`);
  const out: Insn[] = [];
  for (let o = 0; o < filter.length; o += 8) {
    out.push({ code: filter.readUInt16LE(o), jt: filter.readUInt8(o + 2), jf: filter.readUInt8(o + 3), k: filter.readUInt32LE(o + 4) });
  }
  return out;
}

/** The kernel's static checks (bpf_check_classic + seccomp_check_filter), for what we emit. */
export function check(program: Insn[]): void {
  if (program.length > 4096) throw new Error(`${program.length} instructions, more than BPF_MAXINSNS`);
  program.forEach((insn, pc) => {
    const cls = insn.code & 0x07;
    if (cls === 0x05) {
      const op = insn.code & 0xf0;
      const targets = op === 0x00 ? [pc + 1 + insn.k] : [pc + 1 + insn.jt, pc + 1 + insn.jf];
      for (const t of targets) if (t >= program.length) throw new Error(`jump at ${pc} leaves the program (to ${t})`);
    } else if (insn.code === 0x20) {
      if (insn.k % 4 !== 0 || insn.k + 4 > SECCOMP_DATA_SIZE) throw new Error(`load at ${pc} from offset ${insn.k}`);
    }
  });
  const last = program[program.length - 1]!;
  if ((last.code & 0x07) !== 0x06 && !((last.code & 0x07) === 0x05 && (last.code & 0xf0) === 0x00)) {
    throw new Error('the last instruction neither returns nor jumps');
  }
}

export function run(filter: Buffer, data: SeccompData): Run {
  const program = decode(filter);
  check(program);
  const mem = seccompData(data);
  let a = 0, x = 0, pc = 0, steps = 0;
  const scratch = new Array<number>(16).fill(0);
  for (;;) {
    const insn = program[pc];
    if (!insn) throw new Error(`fell off the program at ${pc}`);
    steps++;
    const { code, k } = insn;
    const cls = code & 0x07;
    let next = pc + 1;
    switch (cls) {
      case 0x00: // LD
        if (code === 0x20) a = mem.readUInt32LE(k); // W | ABS
        else if (code === 0x00) a = k; // W | IMM
        else if (code === 0x60) a = scratch[k]!; // W | MEM
        else throw new Error(`unsupported load 0x${code.toString(16)} at ${pc}`);
        break;
      case 0x01: // LDX
        if (code === 0x01) x = k; else if (code === 0x61) x = scratch[k]!;
        else throw new Error(`unsupported ldx 0x${code.toString(16)} at ${pc}`);
        break;
      case 0x02: scratch[k] = a; break; // ST
      case 0x03: scratch[k] = x; break; // STX
      case 0x04: { // ALU
        const operand = code & 0x08 ? x : k;
        switch (code & 0xf0) {
          case 0x00: a = (a + operand) >>> 0; break;
          case 0x10: a = (a - operand) >>> 0; break;
          case 0x20: a = Number((BigInt(a) * BigInt(operand)) & 0xffffffffn); break;
          case 0x40: a = (a | operand) >>> 0; break;
          case 0x50: a = (a & operand) >>> 0; break;
          case 0x60: a = operand >= 32 ? 0 : (a << operand) >>> 0; break;
          case 0x70: a = operand >= 32 ? 0 : a >>> operand; break;
          case 0x80: a = (-a) >>> 0; break;
          case 0xa0: a = (a ^ operand) >>> 0; break;
          default: throw new Error(`unsupported alu 0x${code.toString(16)} at ${pc}`);
        }
        break;
      }
      case 0x05: { // JMP
        const operand = code & 0x08 ? x : k;
        const op = code & 0xf0;
        if (op === 0x00) { next = pc + 1 + k; break; }
        let taken: boolean;
        if (op === 0x10) taken = a === operand;
        else if (op === 0x20) taken = a > operand;
        else if (op === 0x30) taken = a >= operand;
        else if (op === 0x40) taken = (a & operand) !== 0;
        else throw new Error(`unsupported jump 0x${code.toString(16)} at ${pc}`);
        next = pc + 1 + (taken ? insn.jt : insn.jf);
        break;
      }
      case 0x06: return { result: (code & 0x18) === 0x10 ? a : k, steps };
      case 0x07: if (code === 0x07) x = a; else a = x; break; // TAX / TXA
    }
    pc = next;
  }
}
