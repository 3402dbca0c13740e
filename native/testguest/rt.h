/* Runtime of the freestanding test guests: port and MMIO access, CPUID/TSC, a small printf to
 * the serial port, string helpers, the kernel command line, and the exit path. Everything runs at
 * CPL3 with IOPL 3 (see entry.S). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOT_BZIMAGE 1
#define BOOT_PVH 2

#define COM1 0x3f8
#define DEBUG_PORT 0x80
#define I8042_COMMAND 0x64

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t*)addr; }
static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t*)addr = v; }
static inline uint8_t mmio_read8(uint64_t addr) { return *(volatile uint8_t*)addr; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* Guest memory by physical address (identity-mapped). */
static inline void* phys(uint64_t addr) { return (void*)(uintptr_t)addr; }

void* memset(void* d, int c, size_t n);
void* memcpy(void* d, const void* s, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
int strncmp(const char* a, const char* b, size_t n);
/* Occurrences of needle (len bytes) in [hay, hay + n). */
unsigned count_bytes(const void* hay, size_t n, const char* needle, size_t len);

void serial_write(const char* s, size_t n);
void gprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vgprintf(const char* fmt, va_list ap);

/* The command line the VMM handed over (zero page or hvm_start_info); "" when there is none. */
extern const char* g_cmdline;
extern int g_boot_kind;
extern uint64_t g_boot_info;
/* Copies the value of key=value from the command line into buf; false when absent. */
bool cmdline_get(const char* key, char* buf, size_t n);
uint64_t cmdline_u64(const char* key, uint64_t fallback);

/* Busy-waits (at CPL3, so at native speed) for about `us` microseconds by the TSC; the TSC rate
 * comes from the command line (tsc_khz=, the host's), 2 GHz when absent. */
void delay_us(uint64_t us);
uint64_t tsc_khz(void);

/* Test verdicts: one line each, "PASS <what>" / "FAIL <what>: <why>"; the host test greps them. */
extern int g_failures;
void check(bool ok, const char* what, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

/* Ends the VM through the i8042 reset line (what Linux's reboot=k does). */
__attribute__((noreturn)) void guest_exit(void);
