#include "devices/serial.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "snapshot/device_state.h"

namespace vmm {

namespace {

constexpr size_t kRxCapacity = 4096;
static_assert(kRxCapacity == snapshot::kSerialRxCapacity, "a snapshot holds the whole receive FIFO");

// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerMask = 0x0f;

constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirFifoEnabled = 0xc0;  // what a 16550A reports once FCR enabled the FIFOs

constexpr uint8_t kFcrEnableFifo = 0x01;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrLoop = 0x10;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrIdle = 0x40;

// Modem status: carrier, data set ready and clear to send, as a connected terminal would show.
constexpr uint8_t kMsrConnected = 0xb0;

}  // namespace

Serial::Serial(int out_fd, Interrupt* irq) : out_fd_(out_fd), irq_(irq) {}

void Serial::read(uint64_t offset, uint8_t* data, uint32_t len) {
  std::memset(data, 0, len);
  if (len != 1 || offset >= kPortCount) return;
  std::lock_guard<std::mutex> lock(mutex_);
  data[0] = read_register(offset);
}

void Serial::write(uint64_t offset, const uint8_t* data, uint32_t len) {
  if (len != 1 || offset >= kPortCount) return;
  std::lock_guard<std::mutex> lock(mutex_);
  write_register(offset, data[0]);
}

void Serial::queue_input(const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool was_empty = rx_.empty();
  for (size_t i = 0; i < len && rx_.size() < kRxCapacity; i++) rx_.push_back(data[i]);
  if (was_empty && !rx_.empty() && (ier_ & kIerRxData)) raise_interrupt();
}

uint8_t Serial::read_register(uint64_t offset) {
  bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kData: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t byte = rx_.front();
      rx_.pop_front();
      // Edge-triggered line: more data needs another edge for a driver that reads one byte per
      // interrupt.
      if (!rx_.empty() && (ier_ & kIerRxData)) raise_interrupt();
      return byte;
    }
    case kIer: return dlab ? dlm_ : ier_;
    case kIir: {
      uint8_t iir = interrupt_identification();
      // Reading IIR while it reports "THR empty" acknowledges that interrupt (8250 datasheet).
      if ((iir & 0x0f) == kIirThrEmpty) thr_empty_pending_ = false;
      return iir | ((fcr_ & kFcrEnableFifo) ? kIirFifoEnabled : 0);
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: return kLsrThrEmpty | kLsrIdle | (rx_.empty() ? 0 : kLsrDataReady);
    case kMsr:
      if (mcr_ & kMcrLoop) {
        // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI and OUT2->DCD; Linux's probe checks this.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return kMsrConnected;
    case kScr: return scr_;
    default: return 0;
  }
}

void Serial::write_register(uint64_t offset, uint8_t value) {
  bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kData:
      if (dlab) {
        dll_ = value;
        return;
      }
      transmit(value);
      return;
    case kIer:
      if (dlab) {
        dlm_ = value;
        return;
      }
      {
        bool thr_newly_enabled = !(ier_ & kIerThrEmpty) && (value & kIerThrEmpty);
        ier_ = value & kIerMask;
        // The transmitter is always empty, so enabling its interrupt raises one at once; Linux's
        // TX path starts by doing exactly this and waits for the interrupt.
        if (thr_newly_enabled) {
          thr_empty_pending_ = true;
          raise_interrupt();
        } else if ((ier_ & kIerRxData) && !rx_.empty()) {
          raise_interrupt();
        }
      }
      return;
    case kIir: fcr_ = value; return;  // FCR: only the FIFO-enable bit is visible (in IIR)
    case kLcr: lcr_ = value; return;
    case kMcr: mcr_ = value & 0x1f; return;
    case kScr: scr_ = value; return;
    default: return;  // LSR and MSR are read-only
  }
}

void Serial::transmit(uint8_t byte) {
  if (mcr_ & kMcrLoop) {
    if (rx_.size() < kRxCapacity) rx_.push_back(byte);
    if (ier_ & kIerRxData) raise_interrupt();
  } else if (out_fd_ >= 0) {
    ssize_t n;
    do {
      n = ::write(out_fd_, &byte, 1);
    } while (n < 0 && errno == EINTR);
    // A full or broken log loses console output, never the VM.
    if (n == 1) bytes_written_++;
  }
  if (ier_ & kIerThrEmpty) {
    thr_empty_pending_ = true;
    raise_interrupt();
  }
}

uint8_t Serial::interrupt_identification() {
  if ((ier_ & kIerRxData) && !rx_.empty()) return kIirRxData;
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return kIirThrEmpty;
  return kIirNone;
}

std::vector<uint8_t> Serial::SaveState() const {
  std::lock_guard<std::mutex> lock(mutex_);
  snapshot::SerialState s;
  s.ier = ier_;
  s.lcr = lcr_;
  s.mcr = mcr_;
  s.scr = scr_;
  s.fcr = fcr_;
  s.dll = dll_;
  s.dlm = dlm_;
  s.thr_empty_pending = thr_empty_pending_;
  s.rx.assign(rx_.begin(), rx_.end());
  return snapshot::EncodeSerialState(s);
}

vc::Status Serial::LoadState(const uint8_t* data, size_t size) {
  auto decoded = snapshot::DecodeSerialState(data, size);
  if (!decoded.ok()) return decoded.status();
  const snapshot::SerialState& s = decoded.value();
  std::lock_guard<std::mutex> lock(mutex_);
  ier_ = s.ier;
  lcr_ = s.lcr;
  mcr_ = s.mcr;
  scr_ = s.scr;
  fcr_ = s.fcr;
  dll_ = s.dll;
  dlm_ = s.dlm;
  thr_empty_pending_ = s.thr_empty_pending;
  rx_.assign(s.rx.begin(), s.rx.end());
  if ((interrupt_identification() & 0x0f) != kIirNone) raise_interrupt();
  return vc::Status();
}

void Serial::raise_interrupt() {
  if (irq_) irq_->trigger();
}

}  // namespace vmm
