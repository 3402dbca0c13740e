// The part of the i8042 keyboard controller a Linux guest needs: the status and data ports (0x64,
// 0x60), the controller commands Linux's i8042 probe issues, and the reset line. Linux reboots
// with `reboot=k` by pulsing the reset line (command 0xFE, or 0xD1 with bit 0 clear), which this
// model turns into a callback; the core ends the VM there, as Firecracker does.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "common/result.h"
#include "devices/bus_device.h"
#include "devices/interrupt.h"

namespace vmm {

class I8042 final : public BusDevice {
 public:
  // The core maps one I8042 at both ports: offset 0 is port 0x60, offset 4 is port 0x64 (a range
  // of kPortCount starting at 0x60).
  static constexpr uint64_t kPortCount = 5;
  static constexpr uint64_t kDataOffset = 0;
  static constexpr uint64_t kCommandOffset = 4;

  // `on_reset` runs on the vCPU thread that asked for the reset. `kbd_irq` (IRQ 1) may be null.
  I8042(std::function<void()> on_reset, Interrupt* kbd_irq);

  void read(uint64_t offset, uint8_t* data, uint32_t len) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t len) override;

  uint64_t resets() const { return resets_; }

  // The i8042 section of a snapshot (snapshot/device_state.h): the command byte, a command waiting
  // for its data byte, and the output buffer. LoadState checks all of it before changing anything,
  // then pulses the keyboard line if a byte waits with its interrupt enabled (the edge may not
  // have reached the irqchip before it was captured). Both take the device's lock.
  std::vector<uint8_t> SaveState() const;
  vc::Status LoadState(const uint8_t* data, size_t size);

 private:
  void command(uint8_t cmd);
  void data(uint8_t value);
  void push_output(uint8_t byte);
  void request_reset();

  mutable std::mutex mutex_;
  std::function<void()> on_reset_;
  Interrupt* irq_;
  std::deque<uint8_t> output_;
  uint8_t control_ = 0x01;     // controller configuration byte: keyboard interrupt enabled
  uint8_t pending_write_ = 0;  // the controller command awaiting its data byte (0x60, 0xD1, ...)
  uint64_t resets_ = 0;
};

}  // namespace vmm
