#include "rt.h"

const char* g_cmdline = "";
int g_boot_kind;
uint64_t g_boot_info;
int g_failures;

void* memset(void* d, int c, size_t n) {
  uint8_t* p = d;
  while (n--) *p++ = (uint8_t)c;
  return d;
}

void* memcpy(void* d, const void* s, size_t n) {
  uint8_t* p = d;
  const uint8_t* q = s;
  while (n--) *p++ = *q++;
  return d;
}

int memcmp(const void* a, const void* b, size_t n) {
  const uint8_t *p = a, *q = b;
  for (; n; n--, p++, q++)
    if (*p != *q) return *p < *q ? -1 : 1;
  return 0;
}

size_t strlen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

int strncmp(const char* a, const char* b, size_t n) {
  for (; n; n--, a++, b++) {
    if (*a != *b) return (uint8_t)*a < (uint8_t)*b ? -1 : 1;
    if (!*a) return 0;
  }
  return 0;
}

unsigned count_bytes(const void* hay, size_t n, const char* needle, size_t len) {
  unsigned count = 0;
  const uint8_t* h = hay;
  for (size_t i = 0; i + len <= n; i++)
    if (memcmp(h + i, needle, len) == 0) count++;
  return count;
}

/* `rep outsb` per line: on KVM proper that is one port-I/O exit carrying the whole line; this
 * host's PVM still exits once per byte (its emulator steps the string instruction). It needs the
 * TSS I/O bitmap of entry.S: without it PVM refuses CPL3 string I/O to ports above the bitmap. */
void serial_write(const char* s, size_t n) {
  __asm__ volatile("rep outsb" : "+S"(s), "+c"(n) : "d"((uint16_t)COM1) : "memory");
}

static char g_line[512];
static size_t g_line_len;

static void emit(char c) {
  if (g_line_len == sizeof g_line) {
    serial_write(g_line, g_line_len);
    g_line_len = 0;
  }
  g_line[g_line_len++] = c;
  if (c == '\n') {
    serial_write(g_line, g_line_len);
    g_line_len = 0;
  }
}

static void emit_num(uint64_t v, unsigned base, int width, char pad) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (n < width) buf[n++] = pad;
  while (n) emit(buf[--n]);
}

void vgprintf(const char* fmt, va_list ap) {
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      emit(*fmt);
      continue;
    }
    fmt++;
    char pad = ' ';
    int width = 0, longs = 0;
    if (*fmt == '0') pad = '0', fmt++;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') longs++, fmt++;
    switch (*fmt) {
      case 's': {
        const char* s = va_arg(ap, const char*);
        while (*s) emit(*s++);
        break;
      }
      case 'c': emit((char)va_arg(ap, int)); break;
      case 'd': {
        int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
        if (v < 0) emit('-'), v = -v;
        emit_num((uint64_t)v, 10, width, pad);
        break;
      }
      case 'u': emit_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad); break;
      case 'x': emit_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad); break;
      case '%': emit('%'); break;
      default: emit('?'); break;
    }
  }
}

void gprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vgprintf(fmt, ap);
  va_end(ap);
}

void check(bool ok, const char* what, const char* fmt, ...) {
  if (ok) {
    gprintf("PASS %s\n", what);
    return;
  }
  g_failures++;
  gprintf("FAIL %s: ", what);
  va_list ap;
  va_start(ap, fmt);
  vgprintf(fmt, ap);
  va_end(ap);
  gprintf("\n");
}

bool cmdline_get(const char* key, char* buf, size_t n) {
  size_t klen = strlen(key);
  const char* p = g_cmdline;
  while (*p) {
    while (*p == ' ') p++;
    if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
      p += klen + 1;
      size_t i = 0;
      while (*p && *p != ' ' && i + 1 < n) buf[i++] = *p++;
      buf[i] = 0;
      return true;
    }
    while (*p && *p != ' ') p++;
  }
  return false;
}

uint64_t cmdline_u64(const char* key, uint64_t fallback) {
  char buf[32];
  if (!cmdline_get(key, buf, sizeof buf) || !buf[0]) return fallback;
  uint64_t v = 0;
  for (const char* p = buf; *p; p++) {
    if (*p < '0' || *p > '9') return fallback;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  return v;
}

uint64_t tsc_khz(void) { return cmdline_u64("tsc_khz", 2000000); }

void delay_us(uint64_t us) {
  const uint64_t end = rdtsc() + us * tsc_khz() / 1000;
  while (rdtsc() < end) cpu_relax();
}

void guest_exit(void) {
  if (g_line_len) serial_write(g_line, g_line_len);
  for (;;) outb(I8042_COMMAND, 0xfe);
}
