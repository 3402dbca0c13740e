#include "snapshot/machine_state.h"

#include <cstring>
#include <string>

#include "snapshot/byte_io.h"

namespace vmm::snapshot {
namespace {

vc::Status Error(const char* section, const std::string& m) {
  return vc::Status::Error(std::string("snapshot section ") + section + ": " + m);
}

const char* ChipName(uint32_t chip) {
  switch (chip) {
    case KVM_IRQCHIP_PIC_MASTER: return "picMaster";
    case KVM_IRQCHIP_PIC_SLAVE: return "picSlave";
    case KVM_IRQCHIP_IOAPIC: return "ioapic";
  }
  return nullptr;
}

void Record(ByteWriter* w, uint32_t chip, const void* p, size_t n) {
  w->u32(chip);
  w->u32(static_cast<uint32_t>(n));
  w->bytes(p, n);
}

// The PIC's one-bit and small fields (KVM's kvm_kpic_state keeps them as u8): a value outside
// them is not a state the 8259 model can be in.
vc::Status CheckPic(const char* name, const kvm_pic_state& p) {
  struct {
    const char* field;
    uint8_t value, max;
  } fields[] = {
      {"priorityAdd", p.priority_add, 7},
      {"readRegSelect", p.read_reg_select, 1},
      {"poll", p.poll, 1},
      {"specialMask", p.special_mask, 1},
      {"initState", p.init_state, 3},
      {"autoEoi", p.auto_eoi, 1},
      {"rotateOnAutoEoi", p.rotate_on_auto_eoi, 1},
      {"specialFullyNestedMode", p.special_fully_nested_mode, 1},
      {"init4", p.init4, 1},
  };
  for (const auto& f : fields)
    if (f.value > f.max)
      return Error("irqchip", vc::Format("%s.%s is %u, not 0..%u", name, f.field, f.value, f.max));
  if (p.irq_base & 7) return Error("irqchip", vc::Format("%s.irqBase 0x%x is not a multiple of 8", name, p.irq_base));
  return vc::Status();
}

}  // namespace

std::vector<uint8_t> EncodeIrqchipState(const IrqchipState& s) {
  ByteWriter w;
  Record(&w, KVM_IRQCHIP_PIC_MASTER, &s.pic_master, sizeof s.pic_master);
  Record(&w, KVM_IRQCHIP_PIC_SLAVE, &s.pic_slave, sizeof s.pic_slave);
  Record(&w, KVM_IRQCHIP_IOAPIC, &s.ioapic, sizeof s.ioapic);
  return std::move(w.data());
}

vc::Result<IrqchipState> DecodeIrqchipState(const uint8_t* data, size_t size) {
  ByteReader r(data, size, "snapshot section irqchip");
  IrqchipState s;
  struct {
    void* out;
    size_t size;
    bool seen;
  } chips[3] = {{&s.pic_master, sizeof s.pic_master, false},
                {&s.pic_slave, sizeof s.pic_slave, false},
                {&s.ioapic, sizeof s.ioapic, false}};
  while (r.ok() && r.remaining() > 0) {
    size_t at = r.offset();
    uint32_t chip = r.u32("record chip");
    uint32_t len = r.u32("record length");
    if (!r.ok()) break;
    const char* name = ChipName(chip);
    if (!name) return Error("irqchip", vc::Format("record chip %u at offset %zu is not 0 (picMaster), 1 (picSlave) or 2 (ioapic)", chip, at));
    if (chips[chip].seen) return Error("irqchip", vc::Format("record %s appears twice (again at offset %zu)", name, at));
    if (len != chips[chip].size)
      return Error("irqchip", vc::Format("record %s is %u bytes, not the %zu of its KVM structure", name, len, chips[chip].size));
    r.bytes(name, chips[chip].out, len);
    chips[chip].seen = true;
  }
  if (!r.ok()) return r.status();
  for (uint32_t chip = 0; chip < 3; chip++)
    if (!chips[chip].seen) return Error("irqchip", vc::Format("record %s is missing", ChipName(chip)));
  vc::Status st = CheckPic("picMaster", s.pic_master);
  if (st.ok()) st = CheckPic("picSlave", s.pic_slave);
  if (!st.ok()) return st;
  if (s.ioapic.base_address != kIoapicBase)
    return Error("irqchip", vc::Format("ioapic.baseAddress is 0x%llx, not 0x%llx",
                                       static_cast<unsigned long long>(s.ioapic.base_address),
                                       static_cast<unsigned long long>(kIoapicBase)));
  if (s.ioapic.pad) return Error("irqchip", vc::Format("ioapic.pad is 0x%x, not 0", s.ioapic.pad));
  return s;
}

std::vector<uint8_t> EncodePitState(const kvm_pit_state2& s) {
  ByteWriter w;
  w.bytes(&s, sizeof s);
  return std::move(w.data());
}

vc::Result<kvm_pit_state2> DecodePitState(const uint8_t* data, size_t size) {
  kvm_pit_state2 s;
  if (size != sizeof s) return Error("pit", vc::Format("is %zu bytes, not the %zu of kvm_pit_state2", size, sizeof s));
  std::memcpy(&s, data, sizeof s);
  constexpr uint32_t kKnownFlags = KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON;
  if (s.flags & ~kKnownFlags) return Error("pit", vc::Format("flags 0x%x has bits other than 0x%x", s.flags, kKnownFlags));
  for (uint32_t i = 0; i < sizeof s.reserved / sizeof s.reserved[0]; i++)
    if (s.reserved[i]) return Error("pit", vc::Format("reserved[%u] is 0x%x, not 0", i, s.reserved[i]));
  for (int i = 0; i < 3; i++) {
    const kvm_pit_channel_state& c = s.channels[i];
    // The i8254: a 16-bit counter (0 meaning 65536), modes 0..5 (KVM's reset leaves 0xff in a
    // channel nobody programmed), read/write modes 0..3.
    if (c.count > 0x10000) return Error("pit", vc::Format("channels[%d].count %u is over 65536", i, c.count));
    if (c.mode > 5 && c.mode != 0xff)
      return Error("pit", vc::Format("channels[%d].mode %u is not 0..5 (or 255, never programmed)", i, c.mode));
    if (c.rw_mode > 3) return Error("pit", vc::Format("channels[%d].rwMode %u is not 0..3", i, c.rw_mode));
    if (c.bcd > 1 || c.gate > 1 || c.count_latched > 3 || c.status_latched > 1)
      return Error("pit", vc::Format("channels[%d]: bcd %u, gate %u, countLatched %u, statusLatched %u are not flags",
                                     i, c.bcd, c.gate, c.count_latched, c.status_latched));
  }
  return s;
}

std::vector<uint8_t> EncodeClockState(const kvm_clock_data& s) {
  ByteWriter w;
  w.bytes(&s, sizeof s);
  return std::move(w.data());
}

vc::Result<kvm_clock_data> DecodeClockState(const uint8_t* data, size_t size) {
  kvm_clock_data s;
  if (size != sizeof s) return Error("clock", vc::Format("is %zu bytes, not the %zu of kvm_clock_data", size, sizeof s));
  std::memcpy(&s, data, sizeof s);
  // What KVM_GET_CLOCK reports (TSC_STABLE 2, REALTIME 4, HOST_TSC 8); nothing else.
  constexpr uint32_t kKnownFlags = 2 | 4 | 8;
  if (s.flags & ~kKnownFlags) return Error("clock", vc::Format("flags 0x%x has bits other than 0x%x", s.flags, kKnownFlags));
  if (s.pad0) return Error("clock", vc::Format("pad0 is 0x%x, not 0", s.pad0));
  for (uint32_t i = 0; i < sizeof s.pad / sizeof s.pad[0]; i++)
    if (s.pad[i]) return Error("clock", vc::Format("pad[%u] is 0x%x, not 0", i, s.pad[i]));
  return s;
}

}  // namespace vmm::snapshot
