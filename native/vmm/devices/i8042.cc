#include "devices/i8042.h"

#include <cstring>

#include "snapshot/device_state.h"

namespace vmm {

namespace {

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;  // set after a successful self test
constexpr uint8_t kStatusCommandLast = 0x08;
constexpr uint8_t kStatusUnlocked = 0x10;

constexpr uint8_t kCtrKeyboardIrq = 0x01;

constexpr uint8_t kCmdReadCtr = 0x20;
constexpr uint8_t kCmdWriteCtr = 0x60;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKeyboard = 0xab;
constexpr uint8_t kCmdDisableKeyboard = 0xad;
constexpr uint8_t kCmdEnableKeyboard = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteAux = 0xd4;
constexpr uint8_t kCmdPulseReset = 0xfe;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kKeyboardAck = 0xfa;
constexpr uint8_t kOutputPortResetDeasserted = 0x01;

constexpr size_t kOutputCapacity = 16;
static_assert(kOutputCapacity == snapshot::kI8042OutputCapacity, "a snapshot holds the whole output buffer");

}  // namespace

I8042::I8042(std::function<void()> on_reset, Interrupt* kbd_irq)
    : on_reset_(std::move(on_reset)), irq_(kbd_irq) {}

void I8042::read(uint64_t offset, uint8_t* data, uint32_t len) {
  std::memset(data, 0, len);
  if (len != 1) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (offset == kCommandOffset) {
    data[0] = kStatusSystemFlag | kStatusUnlocked | (output_.empty() ? 0 : kStatusOutputFull) |
              (pending_write_ ? kStatusCommandLast : 0);
  } else if (offset == kDataOffset && !output_.empty()) {
    data[0] = output_.front();
    output_.pop_front();
  }
}

void I8042::write(uint64_t offset, const uint8_t* data, uint32_t len) {
  if (len != 1) return;
  bool reset = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t before = resets_;
    if (offset == kCommandOffset) command(data[0]);
    else if (offset == kDataOffset) this->data(data[0]);
    reset = resets_ != before;
  }
  // Outside the lock: the core's handler may stop vCPUs or tear the VM down.
  if (reset && on_reset_) on_reset_();
}

void I8042::command(uint8_t cmd) {
  pending_write_ = 0;
  switch (cmd) {
    case kCmdReadCtr: push_output(control_); break;
    case kCmdWriteCtr:
    case kCmdWriteOutputPort:
    case kCmdWriteAux: pending_write_ = cmd; break;
    case kCmdSelfTest: push_output(kSelfTestPassed); break;
    case kCmdTestKeyboard:
    case kCmdTestAux: push_output(0x00); break;  // interface test passed
    case kCmdReadOutputPort: push_output(kOutputPortResetDeasserted); break;
    case kCmdDisableAux:
    case kCmdEnableAux:
    case kCmdDisableKeyboard:
    case kCmdEnableKeyboard: break;
    case kCmdPulseReset: request_reset(); break;
    default:
      // Commands 0xF0-0xFF pulse output-port lines; those with bit 0 clear pulse the reset line.
      if (cmd >= 0xf0 && !(cmd & 0x01)) request_reset();
      break;
  }
}

void I8042::data(uint8_t value) {
  uint8_t cmd = pending_write_;
  pending_write_ = 0;
  switch (cmd) {
    case kCmdWriteCtr: control_ = value; return;
    case kCmdWriteOutputPort:
      if (!(value & kOutputPortResetDeasserted)) request_reset();
      return;
    case kCmdWriteAux: return;  // no mouse behind the controller: the byte goes nowhere
    default:
      // A byte for the keyboard itself: acknowledge it (there is no keyboard to obey it), and
      // answer a keyboard reset (0xFF) with its self-test result.
      push_output(kKeyboardAck);
      if (value == 0xff) push_output(0xaa);
      return;
  }
}

void I8042::push_output(uint8_t byte) {
  if (output_.size() >= kOutputCapacity) return;
  output_.push_back(byte);
  if ((control_ & kCtrKeyboardIrq) && irq_) irq_->trigger();
}

void I8042::request_reset() { resets_++; }

std::vector<uint8_t> I8042::SaveState() const {
  std::lock_guard<std::mutex> lock(mutex_);
  snapshot::I8042State s;
  s.control = control_;
  s.pending_command = pending_write_;
  s.output.assign(output_.begin(), output_.end());
  return snapshot::EncodeI8042State(s);
}

vc::Status I8042::LoadState(const uint8_t* data, size_t size) {
  auto decoded = snapshot::DecodeI8042State(data, size);
  if (!decoded.ok()) return decoded.status();
  const snapshot::I8042State& s = decoded.value();
  std::lock_guard<std::mutex> lock(mutex_);
  control_ = s.control;
  pending_write_ = s.pending_command;
  output_.assign(s.output.begin(), s.output.end());
  if (!output_.empty() && (control_ & kCtrKeyboardIrq) && irq_) irq_->trigger();
  return vc::Status();
}

}  // namespace vmm
