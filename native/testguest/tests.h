/* The tests the guest can run (vctest=NAME on the command line). */
#pragma once

void test_boot(void);      /* boot.c: zero page / hvm_start_info, e820, cmdline, initrd, ACPI */
void test_smp(void);       /* smp.c: start the APs, check APIC ids and topology */
void test_perf(void);      /* perf.c: user-mode loop, port-I/O and MMIO exit costs */
void test_vsock(void);     /* vsock.c: echo both ways through hybrid vsock */
void test_blk(void);       /* blk.c: read, write, flush, GET_ID */
void test_badchain(void);  /* blk.c: malformed descriptor chains fail alone */
void test_hotplug(void);   /* blk.c: a disk attached through the control socket shows up */
void test_rng(void);       /* virtio.c: entropy from virtio-rng */
