/* Kernel-mode entry of the test guests: everything the guest does at CPL0, which on this host's
 * PVM /dev/kvm is emulated one instruction at a time (~1 us each), so it is kept to a few dozen
 * instructions. The image can be entered three ways:
 *   - bzImage 64-bit boot protocol at 0x100200: long mode, %rsi = zero page (kind 1)
 *   - PVH at 0x100000: 32-bit protected mode, paging off, %ebx = hvm_start_info (kind 2)
 *   - application processors, from the real-mode trampoline the BSP copies to 0x10000 (kind 3)
 * The BSP loads its own GDT and page tables (static data below: nothing is computed at run time)
 * and drops to user mode (CPL3, IOPL 3 so that port I/O works there) with interrupts off; all of
 * the tests run there at native speed. APs only record what CPUID tells them and halt; so does
 * the BSP for vctest=idle (checked here, before user mode), which then costs the host no CPU. */

#define KCODE64 0x08
#define KDATA 0x10
#define UDATA 0x18
#define UCODE64 0x20
#define KCODE32 0x28
#define TSS 0x30
#define MSR_EFER 0xc0000080
#define BOOT_BZIMAGE 1
#define BOOT_PVH 2
#define BOOT_AP 3

/* Records what CPUID says about this CPU at (%r8): initial APIC id (leaf 1 EBX[31:24]), x2APIC
 * id (leaf 0xB EDX), logical processors at core level (leaf 0xB.1 EBX), and a marker. This runs
 * at CPL0 on purpose: on this PVM host CPUID at CPL3 is not intercepted and answers with the
 * *host's* topology, so user mode cannot ask. */
.macro RECORD_CPU
  mov $1, %eax
  xor %ecx, %ecx
  cpuid
  shr $24, %ebx
  mov %ebx, (%r8)
  mov $0xb, %eax
  mov $1, %ecx
  cpuid
  mov %edx, 4(%r8)
  mov %ebx, 8(%r8)
  movl $0xa9a9a9a9, 12(%r8)
.endm

/* ---- bzImage setup header (only in the bzImage; the PVH link discards it) ---- */
  .section .bzsetup, "a"
bz_start:
  .org 0x1f1
  .byte 1                       /* setup_sects: boot sector + 1 sector of setup = 0x400 bytes */
  .word 0                       /* root_flags */
  .long vc_syssize              /* syssize, 16-byte paragraphs (from the linker script) */
  .word 0, 0, 0                 /* ram_size, vid_mode, root_dev */
  .word 0xaa55                  /* boot_flag */
  .byte 0xeb, bz_header_end - bz_jump_end /* jump over the header: also gives its length */
bz_jump_end:
  .ascii "HdrS"                 /* 0x202 */
  .word 0x020f                  /* 0x206 version 2.15 */
  .long 0                       /* realmode_swtch */
  .word 0, 0                    /* start_sys_seg, kernel_version */
  .byte 0                       /* 0x210 type_of_loader (the VMM fills it) */
  .byte 1                       /* 0x211 loadflags: LOADED_HIGH */
  .word 0                       /* setup_move_size */
  .long 0x100000                /* 0x214 code32_start */
  .long 0, 0                    /* ramdisk_image, ramdisk_size (the VMM fills them) */
  .long 0                       /* bootsect_kludge */
  .word 0                       /* heap_end_ptr */
  .byte 0, 0                    /* ext_loader_ver, ext_loader_type */
  .long 0                       /* 0x228 cmd_line_ptr */
  .long 0x7fffffff              /* 0x22c initrd_addr_max */
  .long 0x200000                /* 0x230 kernel_alignment */
  .byte 0                       /* 0x234 relocatable_kernel: no, run at 1 MiB */
  .byte 0                       /* min_alignment */
  .word 1                       /* 0x236 xloadflags: XLF_KERNEL_64 */
  .long 4095                    /* 0x238 cmdline_size */
  .long 0                       /* hardware_subarch */
  .quad 0                       /* hardware_subarch_data */
  .long 0, 0                    /* payload_offset, payload_length */
  .quad 0                       /* 0x250 setup_data */
  .quad 0x100000                /* 0x258 pref_address */
  .long vc_init_size            /* 0x260 init_size */
  .long 0                       /* handover_offset */
  .long 0                       /* kernel_info_offset */
bz_header_end:
  .org 0x400

/* ---- PVH entry note (only in the ELF) ---- */
  .section .note.Xen, "a", @note
  .balign 4
  .long 4                       /* namesz: "Xen\0" */
  .long 4                       /* descsz */
  .long 18                      /* XEN_ELFNOTE_PHYS32_ENTRY */
  .asciz "Xen"
  .long pvh_entry

/* ---- entry points, at fixed offsets from 0x100000 ---- */
  .section .entry, "ax"
  .code32
  .globl pvh_entry
pvh_entry:                      /* 0x100000 */
  mov %ebx, %esi
  mov $BOOT_PVH, %edi
  jmp enter_long32

  .org 0x200
  .code64
  .globl bz_entry64
bz_entry64:                     /* 0x100200 */
  mov $BOOT_BZIMAGE, %edi
  jmp enter_long64

  .code32
/* 32-bit protected mode, paging off (PVH BSP, and APs after the trampoline) -> long mode. */
enter_long32:
  lgdt gdt_ptr
  mov $0x20, %eax               /* CR4.PAE */
  mov %eax, %cr4
  mov $pml4, %eax
  mov %eax, %cr3
  mov $MSR_EFER, %ecx
  rdmsr
  or $0x100, %eax               /* EFER.LME */
  wrmsr
  mov $0x80000011, %eax         /* CR0.PG | ET | PE */
  mov %eax, %cr0
  ljmp $KCODE64, $long_mode

  .code64
enter_long64:                   /* already in long mode on the VMM's identity map */
  lgdt gdt_ptr
  mov $pml4, %eax
  mov %rax, %cr3
long_mode:
  mov %esi, %esi                /* zero-extend: upper halves are undefined after a mode switch */
  mov %edi, %edi
  cmp $BOOT_AP, %edi
  je ap_long_mode
  mov $bsp_info, %r8
  RECORD_CPU
  /* vctest=idle first on the command line: stay at CPL0 and halt with interrupts off, so that an
     idle VM costs the host no CPU (user mode cannot hlt, and nothing brings it back to CPL0). */
  cmp $BOOT_PVH, %edi
  je 1f
  mov 0x228(%rsi), %eax         /* zero page: cmd_line_ptr (the VMM keeps it below 4 GiB) */
  jmp 2f
1:
  mov 24(%rsi), %rax            /* hvm_start_info: cmdline_paddr */
2:
  test %rax, %rax
  jz 3f
  movabs $0x693d747365746376, %rdx  /* "vctest=i" */
  cmp %rdx, (%rax)
  jne 3f
  cmpl $0x656c6469, 7(%rax)     /* "idle" */
  je idle
3:
  mov $kstack_top, %rsp
  mov $TSS, %ax                 /* the TSS's I/O bitmap opens every port to user mode: this PVM
                                   checks it for CPL3 port I/O whatever IOPL says */
  ltr %ax
  mov $(UDATA | 3), %eax        /* user data in DS/ES: string I/O (rep outsb) reads through DS */
  mov %eax, %ds
  mov %eax, %es
  pushq $(UDATA | 3)            /* iretq frame: SS, RSP, RFLAGS, CS, RIP */
  pushq $(user_stack_top - 8)   /* as if a return address had been pushed (ABI alignment) */
  pushq $0x3002                 /* IOPL 3, IF 0: port I/O allowed in user mode, no interrupts */
  pushq $(UCODE64 | 3)
  pushq $guest_entry            /* guest_entry(kind = %rdi, boot info = %rsi) */
  iretq

/* vctest=idle: the same first debug-port write as guest_entry, "ready" on COM1, then halt until
   the VMM stops the VM (its stop signal takes the vCPU out of KVM_RUN). */
idle:
  mov $1, %al
  out %al, $0x80
  mov $idle_msg, %esi
  mov $0x3f8, %dx
4:
  movb (%rsi), %al
  test %al, %al
  jz 5f
  out %al, %dx
  inc %rsi
  jmp 4b
5:
  cli
  hlt
  jmp 5b
idle_msg: .asciz "vctest idle\nready\n"

/* An AP in long mode: take a slot, record CPUID's view of this CPU, count itself, halt. */
ap_long_mode:
  mov $1, %r8d
  lock xadd %r8d, ap_slots
  shl $4, %r8
  add $ap_info, %r8
  RECORD_CPU
  lock incl ap_done
1: cli
  hlt
  jmp 1b

/* ---- AP real-mode trampoline: copied to 0x10000 and started there by SIPI vector 0x10 ---- */
  .code16
  .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
  cli
  mov %cs, %ax
  mov %ax, %ds
  lgdtl (ap_tramp_gdt_ptr - ap_tramp_start)
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl $KCODE32, $ap_entry32
  .balign 8
ap_tramp_gdt_ptr:
  .word gdt_end - gdt - 1
  .long gdt
ap_tramp_end:

  .code32
ap_entry32:
  mov $KDATA, %ax               /* flat data before touching memory by absolute address */
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $BOOT_AP, %edi
  jmp enter_long32

/* ---- descriptor tables and page tables: static, so no kernel-mode loop builds them ---- */
  .section .data.boot, "aw"
  .balign 16
gdt:
  .quad 0
  .quad 0x00af9b000000ffff      /* 0x08 kernel code, 64-bit */
  .quad 0x00cf93000000ffff      /* 0x10 kernel data */
  .quad 0x00cff3000000ffff      /* 0x18 user data (DPL 3) */
  .quad 0x00affb000000ffff      /* 0x20 user code, 64-bit (DPL 3) */
  .quad 0x00cf9b000000ffff      /* 0x28 kernel code, 32-bit (AP trampoline) */
  .quad vc_tss_desc_lo          /* 0x30 64-bit TSS (the linker script splits its address) */
  .quad vc_tss_desc_hi
gdt_end:
  .balign 8
gdt_ptr:                        /* 10 bytes; lgdt in 32-bit mode reads the first 6 */
  .word gdt_end - gdt - 1
  .quad gdt

  .globl ap_slots, ap_done, ap_info, bsp_info
  .balign 4
ap_slots: .long 0
ap_done: .long 0

/* Identity map of the first 4 GiB in 2 MiB pages, all user-accessible (the tests run at CPL3 and
 * touch RAM, the virtio-mmio slots and the local APIC directly). The MMIO gap (3..4 GiB) is mapped
 * uncached. */
  .balign 4096
pml4:
  .quad pdpt + 7
  .fill 511, 8, 0
pdpt:
  .quad pd + 7, pd + 0x1000 + 7, pd + 0x2000 + 7, pd + 0x3000 + 7
  .fill 508, 8, 0
pd:
  i = 0
  .rept 1536
  .quad (i << 21) | 0x87        /* P | RW | US | PS */
  i = i + 1
  .endr
  .rept 512
  .quad (i << 21) | 0x9f        /* P | RW | US | PWT | PCD | PS */
  i = i + 1
  .endr

/* 64-bit TSS: no stacks are ever switched to (no interrupts, no syscalls); it exists for its I/O
 * permission bitmap, all zeros (every port allowed) and closed by the 0xff byte the CPU wants. */
  .balign 4096
  .globl vc_tss
vc_tss:
  .fill 0x66, 1, 0
  .word 0x68                    /* I/O map base */
  .fill 8192, 1, 0
  .byte 0xff
vc_tss_end:

  .section .bss
  .balign 4096
kstack: .skip 4096
kstack_top:
  .balign 16
ap_info: .skip 16 * 256
bsp_info: .skip 16
  .balign 4096
user_stack: .skip 65536
user_stack_top:
