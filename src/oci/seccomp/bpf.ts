// A classic-BPF assembler with labels, for seccomp filters. Conditional jumps carry 8-bit forward
// offsets, so a target more than 255 instructions away is reached through a `ja` (32-bit offset)
// placed right after the jump: a trampoline. Layout adds trampolines until every offset fits.

/** Opcodes (linux/bpf_common.h) of the few instructions a seccomp filter needs. */
export const BPF = {
  LD_W_ABS: 0x20, // A = *(u32 *)(seccomp_data + k)
  ALU_AND_K: 0x54, // A &= k
  JA: 0x05, // pc += k
  JEQ_K: 0x15, // pc += (A == k) ? jt : jf
  JGT_K: 0x25, // pc += (A > k) ? jt : jf
  JGE_K: 0x35, // pc += (A >= k) ? jt : jf
  JSET_K: 0x45, // pc += (A & k) ? jt : jf
  RET_K: 0x06, // return k
} as const;

/** The kernel's limit on a classic BPF program (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

export type Label = number;
export type Jump = 'jeq' | 'jgt' | 'jge' | 'jset';
const JUMP_CODES: Record<Jump, number> = { jeq: BPF.JEQ_K, jgt: BPF.JGT_K, jge: BPF.JGE_K, jset: BPF.JSET_K };

type Item =
  | { kind: 'ld'; k: number }
  | { kind: 'and'; k: number }
  | { kind: 'jump'; op: Jump; k: number; jt: Label; jf: Label }
  | { kind: 'ja'; target: Label }
  | { kind: 'ret'; k: number };

export interface Instruction { code: number; jt: number; jf: number; k: number }

export class Assembler {
  private readonly items: Item[] = [];
  /** label -> index of the item it stands before (items.length: the end). */
  private readonly labels: Array<number | undefined> = [];

  newLabel(): Label {
    this.labels.push(undefined);
    return this.labels.length - 1;
  }

  /** Places `label` before the next item; a label placed twice is a bug in the code generator. */
  place(label: Label): void {
    if (this.labels[label] !== undefined) throw new Error(`BPF label ${label} placed twice`);
    this.labels[label] = this.items.length;
  }

  load(offset: number): void { this.items.push({ kind: 'ld', k: offset }); }
  and(mask: number): void { this.items.push({ kind: 'and', k: mask >>> 0 }); }
  jump(op: Jump, k: number, jt: Label, jf: Label): void { this.items.push({ kind: 'jump', op, k: k >>> 0, jt, jf }); }
  goto(target: Label): void { this.items.push({ kind: 'ja', target }); }
  ret(k: number): void { this.items.push({ kind: 'ret', k: k >>> 0 }); }

  /** Lays the program out (trampolines where needed) and returns its instructions. */
  assemble(): Instruction[] {
    const items = this.items;
    const trampolines = new Array<number>(items.length).fill(0);
    const pos = new Array<number>(items.length + 1);
    const at = (label: Label): number => {
      const index = this.labels[label];
      if (index === undefined) throw new Error(`BPF label ${label} never placed`);
      return pos[index]!;
    };
    const farTargets = (i: number): Label[] => {
      const item = items[i]!;
      if (item.kind !== 'jump') return [];
      const far = [item.jt, item.jf].filter((l) => at(l) - (pos[i]! + 1) > 255);
      return [...new Set(far.map((l) => at(l)))].map((p) => far.find((l) => at(l) === p)!);
    };
    // Trampolines only lengthen forward distances, so the count needed per jump only grows.
    for (let changed = true; changed;) {
      changed = false;
      for (let i = 0, p = 0; i <= items.length; i++) {
        pos[i] = p;
        p += 1 + (trampolines[i] ?? 0);
      }
      for (let i = 0; i < items.length; i++) {
        const need = farTargets(i).length;
        if (need > trampolines[i]!) { trampolines[i] = need; changed = true; }
      }
    }
    const out: Instruction[] = [];
    items.forEach((item, i) => {
      const next = pos[i]! + 1;
      const offset = (label: Label): number => {
        const d = at(label) - next;
        if (d < 0) throw new Error(`BPF jump backwards to label ${label}`);
        return d;
      };
      switch (item.kind) {
        case 'ld': out.push({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: item.k }); break;
        case 'and': out.push({ code: BPF.ALU_AND_K, jt: 0, jf: 0, k: item.k }); break;
        case 'ret': out.push({ code: BPF.RET_K, jt: 0, jf: 0, k: item.k }); break;
        case 'ja': out.push({ code: BPF.JA, jt: 0, jf: 0, k: offset(item.target) }); break;
        case 'jump': {
          const far = farTargets(i);
          const viaTrampoline = (label: Label): number => {
            const slot = far.findIndex((l) => at(l) === at(label));
            return slot >= 0 ? slot : offset(label);
          };
          out.push({ code: JUMP_CODES[item.op], jt: viaTrampoline(item.jt), jf: viaTrampoline(item.jf), k: item.k });
          far.forEach((label, slot) => out.push({ code: BPF.JA, jt: 0, jf: 0, k: at(label) - (next + slot + 1) }));
          // A trampoline the jump no longer needs cannot happen (distances only grow); keep the count honest.
          if (far.length !== trampolines[i]) throw new Error('BPF layout: trampoline count changed');
          break;
        }
      }
    });
    return out;
  }
}

/** struct sock_filter[] as the kernel reads it: u16 code, u8 jt, u8 jf, u32 k, little-endian. */
export function encode(program: readonly Instruction[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(insn.jt, i * 8 + 2);
    buf.writeUInt8(insn.jf, i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}
