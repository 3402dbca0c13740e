#include "snapshot/vcpu_state.h"

#include <cstring>
#include <set>
#include <string>

#include "snapshot/byte_io.h"

namespace vmm::snapshot {
namespace {

const char* RecordName(uint32_t kind) {
  switch (static_cast<VcpuRecord>(kind)) {
    case VcpuRecord::kRegs: return "regs";
    case VcpuRecord::kSregs: return "sregs";
    case VcpuRecord::kFpu: return "fpu";
    case VcpuRecord::kXsave: return "xsave";
    case VcpuRecord::kXcrs: return "xcrs";
    case VcpuRecord::kMsrs: return "msrs";
    case VcpuRecord::kLapic: return "lapic";
    case VcpuRecord::kMpState: return "mpState";
    case VcpuRecord::kEvents: return "events";
    case VcpuRecord::kDebugRegs: return "debugRegs";
    case VcpuRecord::kCpuid: return "cpuid";
    case VcpuRecord::kTscKhz: return "tscKhz";
  }
  return nullptr;
}

void Record(ByteWriter* w, VcpuRecord kind, const void* p, size_t n) {
  w->u32(static_cast<uint32_t>(kind));
  w->u32(static_cast<uint32_t>(n));
  w->bytes(p, n);
}

template <typename T>
void Record(ByteWriter* w, VcpuRecord kind, const T& value) {
  Record(w, kind, &value, sizeof value);
}

// A counted array of KVM entries: count u32, then the entries.
template <typename T>
std::vector<uint8_t> Counted(const std::vector<T>& entries) {
  ByteWriter w;
  w.u32(static_cast<uint32_t>(entries.size()));
  w.bytes(entries.data(), entries.size() * sizeof(T));
  return std::move(w.data());
}

template <typename T>
bool ReadCounted(const uint8_t* p, uint32_t len, uint32_t max, std::vector<T>* out, std::string* why) {
  if (len < 4) {
    *why = vc::Format("is %u bytes, too short for its count", len);
    return false;
  }
  uint32_t count;
  std::memcpy(&count, p, 4);
  if (count > max) {
    *why = vc::Format("has %u entries, more than the %u allowed", count, max);
    return false;
  }
  if (len != 4 + static_cast<uint64_t>(count) * sizeof(T)) {
    *why = vc::Format("is %u bytes, not 4 + %u × %zu for its %u entries", len, count, sizeof(T), count);
    return false;
  }
  out->resize(count);
  if (count) std::memcpy(out->data(), p + 4, count * sizeof(T));
  return true;
}

}  // namespace

std::vector<uint8_t> EncodeVcpuState(const VcpuState& v) {
  ByteWriter w;
  Record(&w, VcpuRecord::kRegs, v.regs);
  Record(&w, VcpuRecord::kSregs, v.sregs);
  Record(&w, VcpuRecord::kFpu, v.fpu);
  Record(&w, VcpuRecord::kXsave, v.xsave.data(), v.xsave.size());
  Record(&w, VcpuRecord::kXcrs, v.xcrs);
  std::vector<uint8_t> msrs = Counted(v.msrs);
  Record(&w, VcpuRecord::kMsrs, msrs.data(), msrs.size());
  Record(&w, VcpuRecord::kLapic, v.lapic);
  Record(&w, VcpuRecord::kMpState, v.mp_state);
  Record(&w, VcpuRecord::kEvents, v.events);
  Record(&w, VcpuRecord::kDebugRegs, v.debugregs);
  std::vector<uint8_t> cpuid = Counted(v.cpuid);
  Record(&w, VcpuRecord::kCpuid, cpuid.data(), cpuid.size());
  Record(&w, VcpuRecord::kTscKhz, v.tsc_khz);
  return std::move(w.data());
}

vc::Result<VcpuState> DecodeVcpuState(const uint8_t* data, size_t size, uint32_t index) {
  std::string what = vc::Format("snapshot section vcpu[%u]", index);
  auto error = [&](const std::string& m) { return vc::Status::Error(what + ": " + m); };
  ByteReader r(data, size, what);
  VcpuState v;
  std::set<uint32_t> seen;
  // Fixed-size records: where each goes and how long it must be.
  struct Fixed {
    VcpuRecord kind;
    void* out;
    size_t size;
  } fixed[] = {
      {VcpuRecord::kRegs, &v.regs, sizeof v.regs},           {VcpuRecord::kSregs, &v.sregs, sizeof v.sregs},
      {VcpuRecord::kFpu, &v.fpu, sizeof v.fpu},              {VcpuRecord::kXcrs, &v.xcrs, sizeof v.xcrs},
      {VcpuRecord::kLapic, &v.lapic, sizeof v.lapic},        {VcpuRecord::kMpState, &v.mp_state, sizeof v.mp_state},
      {VcpuRecord::kEvents, &v.events, sizeof v.events},     {VcpuRecord::kDebugRegs, &v.debugregs, sizeof v.debugregs},
      {VcpuRecord::kTscKhz, &v.tsc_khz, sizeof v.tsc_khz},
  };
  while (r.ok() && r.remaining() > 0) {
    size_t at = r.offset();
    uint32_t kind = r.u32("record kind");
    uint32_t len = r.u32("record length");
    if (!r.ok()) break;
    const char* name = RecordName(kind);
    if (!name) return error(vc::Format("record kind %u at offset %zu is not one format version 1 defines", kind, at));
    if (!seen.insert(kind).second) return error(vc::Format("record %s appears twice (again at offset %zu)", name, at));
    if (len > r.remaining())
      return error(vc::Format("record %s is %u bytes, but only %zu are left (truncated)", name, len, r.remaining()));
    std::vector<uint8_t> bytes(len);
    r.bytes(name, bytes.data(), len);
    std::string why;
    bool done = false;
    for (const Fixed& f : fixed) {
      if (static_cast<uint32_t>(f.kind) != kind) continue;
      if (len != f.size)
        return error(vc::Format("record %s is %u bytes, not the %zu of its KVM structure", name, len, f.size));
      std::memcpy(f.out, bytes.data(), len);
      done = true;
    }
    if (done) continue;
    switch (static_cast<VcpuRecord>(kind)) {
      case VcpuRecord::kXsave:
        if (len < kMinXsaveBytes || len > kMaxXsaveBytes || len % 4)
          return error(vc::Format("record xsave is %u bytes, not a multiple of 4 in %u..%u", len, kMinXsaveBytes,
                                  kMaxXsaveBytes));
        v.xsave = std::move(bytes);
        break;
      case VcpuRecord::kMsrs:
        if (!ReadCounted(bytes.data(), len, kMaxMsrs, &v.msrs, &why)) return error("record msrs " + why);
        break;
      case VcpuRecord::kCpuid:
        if (!ReadCounted(bytes.data(), len, kMaxCpuidEntries, &v.cpuid, &why)) return error("record cpuid " + why);
        break;
      default:
        break;
    }
  }
  if (!r.ok()) return r.status();
  for (uint32_t kind = 1; kind <= kVcpuRecordCount; kind++)
    if (!seen.count(kind)) return error(vc::Format("record %s is missing", RecordName(kind)));

  std::set<uint32_t> msr_indices;
  for (const kvm_msr_entry& m : v.msrs) {
    if (m.reserved) return error(vc::Format("msrs: MSR 0x%x has reserved field 0x%x, not 0", m.index, m.reserved));
    if (!msr_indices.insert(m.index).second) return error(vc::Format("msrs: MSR 0x%x appears twice", m.index));
  }
  if (v.mp_state.mp_state > KVM_MP_STATE_SIPI_RECEIVED)
    return error(vc::Format("mpState %u is not one an x86 vCPU has (0..%u)", v.mp_state.mp_state,
                            KVM_MP_STATE_SIPI_RECEIVED));
  if (v.tsc_khz == 0) return error("tscKhz is 0");
  return v;
}

}  // namespace vmm::snapshot
