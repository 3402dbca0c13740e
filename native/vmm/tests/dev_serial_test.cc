// The 8250/16550A UART and the i8042 reset line.
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "devices/i8042.h"
#include "devices/interrupt.h"
#include "devices/serial.h"
#include "tests/check.h"

using vmm::CountingInterrupt;
using vmm::I8042;
using vmm::Serial;

namespace {
uint8_t rd(vmm::BusDevice& d, uint64_t off) {
  uint8_t v = 0;
  d.read(off, &v, 1);
  return v;
}
void wr(vmm::BusDevice& d, uint64_t off, uint8_t v) { d.write(off, &v, 1); }

std::string drain(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}
}  // namespace

VMM_TEST(dev_serial_transmits_to_the_console_fd) {
  int p[2];
  CHECK(pipe2(p, O_NONBLOCK) == 0);
  CountingInterrupt irq;
  Serial s(p[1], &irq);
  for (char ch : std::string("Linux version 6.1\n")) wr(s, 0, static_cast<uint8_t>(ch));
  CHECK(drain(p[0]) == "Linux version 6.1\n");
  CHECK_EQ(s.bytes_written(), uint64_t{18});
  CHECK_EQ(rd(s, 5) & 0x60, 0x60);  // LSR: THR empty and transmitter idle, always
  CHECK_EQ(irq.count(), 0u);        // no interrupts enabled
  close(p[0]);
  close(p[1]);
}

VMM_TEST(dev_serial_thr_empty_interrupt_is_raised_and_acknowledged_by_iir) {
  CountingInterrupt irq;
  Serial s(-1, &irq);
  CHECK_EQ(rd(s, 2) & 0x0f, 0x01);  // IIR: nothing pending
  wr(s, 1, 0x02);                   // IER: THR empty
  CHECK_EQ(irq.count(), 1u);
  CHECK_EQ(rd(s, 2) & 0x0f, 0x02);
  CHECK_EQ(rd(s, 2) & 0x0f, 0x01);  // reading IIR acknowledged it
  wr(s, 0, 'x');
  CHECK_EQ(irq.count(), 2u);
  CHECK_EQ(rd(s, 2) & 0x0f, 0x02);
}

VMM_TEST(dev_serial_receives_input_with_data_ready_and_interrupt) {
  CountingInterrupt irq;
  Serial s(-1, &irq);
  wr(s, 1, 0x01);  // IER: received data
  const uint8_t in[] = {'h', 'i'};
  s.queue_input(in, 2);
  CHECK_EQ(irq.count(), 1u);
  CHECK_EQ(rd(s, 5) & 0x01, 0x01);
  CHECK_EQ(rd(s, 2) & 0x0f, 0x04);
  CHECK_EQ(rd(s, 0), 'h');
  CHECK_EQ(rd(s, 0), 'i');
  CHECK_EQ(rd(s, 5) & 0x01, 0x00);
  CHECK_EQ(rd(s, 0), 0);  // an empty RBR reads zero
}

VMM_TEST(dev_serial_divisor_latch_scratch_fifo_and_loopback) {
  Serial s(-1, nullptr);
  wr(s, 3, 0x83);  // DLAB on, 8N1
  wr(s, 0, 0x01);
  wr(s, 1, 0x00);
  CHECK_EQ(rd(s, 0), 0x01);
  wr(s, 3, 0x03);
  CHECK_EQ(rd(s, 1), 0x00);  // IER again
  wr(s, 7, 0x5a);
  CHECK_EQ(rd(s, 7), 0x5a);
  wr(s, 2, 0x01);  // FCR: enable FIFOs -> IIR reports a 16550A
  CHECK_EQ(rd(s, 2) & 0xc0, 0xc0);
  CHECK_EQ(rd(s, 6), 0xb0);  // MSR: DCD, DSR, CTS
  wr(s, 4, 0x1a);            // loopback with RTS and OUT2 (Linux's probe)
  CHECK_EQ(rd(s, 6) & 0xf0, 0x90);
  wr(s, 0, 'Q');  // in loopback, sent bytes come back
  CHECK_EQ(rd(s, 0), 'Q');
  uint8_t wide[2] = {1, 1};
  s.write(0, wide, 2);  // only byte accesses exist on ISA ports
  CHECK_EQ(rd(s, 5) & 0x01, 0);
}

VMM_TEST(dev_i8042_reset_command_ends_the_vm) {
  int resets = 0;
  I8042 kbd([&] { resets++; }, nullptr);
  wr(kbd, I8042::kCommandOffset, 0xfe);
  CHECK_EQ(resets, 1);
  // Writing the output port with the reset line low also resets.
  wr(kbd, I8042::kCommandOffset, 0xd1);
  wr(kbd, I8042::kDataOffset, 0xfe);
  CHECK_EQ(resets, 2);
  wr(kbd, I8042::kCommandOffset, 0xd1);
  wr(kbd, I8042::kDataOffset, 0xff);
  CHECK_EQ(resets, 2);
  CHECK_EQ(kbd.resets(), uint64_t{2});
}

VMM_TEST(dev_i8042_answers_the_linux_probe) {
  CountingInterrupt irq;
  I8042 kbd(nullptr, &irq);
  CHECK_EQ(rd(kbd, I8042::kCommandOffset) & 0x01, 0);  // output buffer empty
  wr(kbd, I8042::kCommandOffset, 0xaa);                // self test
  CHECK_EQ(rd(kbd, I8042::kCommandOffset) & 0x01, 1);
  CHECK_EQ(rd(kbd, I8042::kDataOffset), 0x55);
  wr(kbd, I8042::kCommandOffset, 0x60);  // write the configuration byte
  wr(kbd, I8042::kDataOffset, 0x47);
  wr(kbd, I8042::kCommandOffset, 0x20);
  CHECK_EQ(rd(kbd, I8042::kDataOffset), 0x47);
  wr(kbd, I8042::kDataOffset, 0xff);  // keyboard reset: ACK then self-test passed
  CHECK_EQ(rd(kbd, I8042::kDataOffset), 0xfa);
  CHECK_EQ(rd(kbd, I8042::kDataOffset), 0xaa);
  CHECK(irq.count() >= 3u);
}
