// An 8250/16550A UART, enough for Linux's console and earlycon: THR/RBR, IER, IIR/FCR, LCR, MCR,
// LSR, MSR, SCR and the divisor latch. Transmitted bytes go to a host fd (the VM's console log);
// received bytes come from queue_input(). The core maps it at port 0x3f8 (8 ports) with IRQ 4.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/result.h"
#include "devices/bus_device.h"
#include "devices/interrupt.h"

namespace vmm {

class Serial final : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 8;

  // `out_fd` (borrowed; -1 discards output) receives everything the guest transmits. `irq` may be
  // null when the line is not wired.
  Serial(int out_fd, Interrupt* irq);

  void read(uint64_t offset, uint8_t* data, uint32_t len) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t len) override;

  // Bytes typed at the console, delivered to the guest through RBR. Bounded: bytes beyond the
  // receive buffer's capacity are dropped, as a real UART drops on overrun.
  void queue_input(const uint8_t* data, size_t len);

  uint64_t bytes_written() const { return bytes_written_; }

  // The serial section of a snapshot (snapshot/device_state.h): registers, the pending THR-empty
  // interrupt and the receive FIFO. LoadState checks all of it before changing anything, then
  // pulses the line if an interrupt is pending (its edge may not have reached the irqchip before
  // the irqchip was captured; a spurious one is harmless, the driver reads IIR). Both take the
  // device's lock.
  std::vector<uint8_t> SaveState() const;
  vc::Status LoadState(const uint8_t* data, size_t size);

 private:
  uint8_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint8_t value);
  void transmit(uint8_t byte);
  uint8_t interrupt_identification();
  void raise_interrupt();

  mutable std::mutex mutex_;  // vCPU threads (port I/O) and the console input thread
  int out_fd_;
  Interrupt* irq_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0x08, scr_ = 0, fcr_ = 0;
  uint8_t dll_ = 0x0c, dlm_ = 0;  // 9600 baud at power-on
  bool thr_empty_pending_ = false;
  uint64_t bytes_written_ = 0;
};

}  // namespace vmm
