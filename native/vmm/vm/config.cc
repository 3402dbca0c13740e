#include "vm/config.h"

#include <cmath>
#include <initializer_list>

#include "common/json.h"
#include "arch/x86/layout.h"

namespace vmm::kvm {

using vc::Format;
using vc::Result;
using vc::Status;

uint32_t VirtioSlotCount(const VmConfig& c) {
  return (c.vsock.enabled ? 1 : 0) + (c.rng ? 1 : 0) + uint32_t(c.blocks.size());
}

namespace {

// Reads the fields of one JSON object, remembering which it consumed so that leftovers can be
// reported as unknown.
class Fields {
 public:
  Fields(const json::Value& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void Str(const char* key, std::string* out, bool required = false) {
    const json::Value* v = Take(key, required);
    if (!v) return;
    if (!v->is_string()) return Fail(key, "must be a string");
    if (v->as_string().find('\0') != std::string::npos) return Fail(key, "must not contain NUL");
    *out = v->as_string();
  }

  void Bool(const char* key, bool* out) {
    const json::Value* v = Take(key, false);
    if (!v) return;
    if (!v->is_bool()) return Fail(key, "must be true or false");
    *out = v->as_bool();
  }

  void Uint(const char* key, uint64_t min, uint64_t max, uint64_t* out) {
    const json::Value* v = Take(key, false);
    if (!v) return;
    const double d = v->as_number();
    if (!v->is_number() || d != std::floor(d) || d < double(min) || d > double(max))
      return Fail(key, Format("must be an integer in %llu..%llu, not %s", (unsigned long long)min,
                              (unsigned long long)max, json::serialize(*v).c_str()));
    *out = uint64_t(d);
  }

  const json::Value* Take(const char* key, bool required) {
    if (!ok()) return nullptr;
    taken_.push_back(key);
    const json::Value* v = obj_.find(key);
    if (!v && required) Fail(key, "is required");
    return v;
  }

  // Call last: any member not taken is a typo or an unsupported option.
  void RejectUnknown() {
    if (!ok()) return;
    for (const auto& m : obj_.members()) {
      bool known = false;
      for (const auto& t : taken_) known = known || m.key == t;
      if (!known) {
        error_ = where_ + ": unknown field \"" + m.key + "\"";
        return;
      }
    }
  }

  void Fail(const char* key, const std::string& why) {
    if (ok()) error_ = where_ + "." + key + " " + why;
  }

 private:
  const json::Value& obj_;
  std::string where_;
  std::vector<std::string> taken_;
  std::string error_;
};

}  // namespace

Result<VmConfig> ParseVmConfig(std::string_view text) {
  json::Value root;
  std::string parse_error;
  if (!json::parse(text, &root, &parse_error)) return Status::Error("config: not valid JSON: " + parse_error);
  if (!root.is_object()) return Status::Error("config: must be a JSON object");

  VmConfig c;
  Fields f(root, "config");
  uint64_t vcpus = c.vcpus, memory = c.memory_mib;
  f.Str("kernel", &c.kernel_path, true);
  f.Str("initrd", &c.initrd_path);
  f.Str("cmdline", &c.cmdline);
  f.Uint("vcpus", 1, 254, &vcpus);
  // At most the RAM below the MMIO gap: guest RAM is one linear window (see guest_ram.h).
  f.Uint("memoryMiB", 2, x86::layout::kMmioGapStart >> 20, &memory);
  f.Bool("hugepages", &c.hugepages);
  f.Str("serialOutput", &c.serial_output);
  f.Str("controlSocket", &c.control_socket);
  f.Bool("rng", &c.rng);
  f.Bool("i8042", &c.i8042);
  f.Bool("acpiPoweroff", &c.acpi_poweroff);

  if (const json::Value* v = f.Take("vsock", false)) {
    if (!v->is_object()) return Status::Error("config.vsock must be an object");
    Fields vf(*v, "config.vsock");
    uint64_t cid = c.vsock.guest_cid;
    // CIDs 0..2 are reserved (hypervisor, local, host); 0xffffffff is VMADDR_CID_ANY.
    vf.Uint("guestCid", 3, 0xfffffffe, &cid);
    vf.Str("udsPath", &c.vsock.uds_path, true);
    vf.RejectUnknown();
    if (!vf.ok()) return Status::Error(vf.error());
    c.vsock.enabled = true;
    c.vsock.guest_cid = cid;
  }
  if (const json::Value* v = f.Take("blocks", false)) {
    if (!v->is_array()) return Status::Error("config.blocks must be an array");
    for (size_t i = 0; i < v->items().size(); i++) {
      const json::Value& item = v->items()[i];
      const std::string where = Format("config.blocks[%zu]", i);
      if (!item.is_object()) return Status::Error(where + " must be an object");
      Fields bf(item, where);
      BlockConfig b;
      bf.Str("path", &b.path);
      bf.Bool("readOnly", &b.read_only);
      bf.Str("serial", &b.serial);
      bf.RejectUnknown();
      if (!bf.ok()) return Status::Error(bf.error());
      if (b.serial.size() > 20) return Status::Error(where + ".serial \"" + b.serial + "\" is longer than 20 bytes");
      if (b.path.empty() && !b.serial.empty()) return Status::Error(where + ".serial needs a path (a free slot has no disk)");
      c.blocks.push_back(std::move(b));
    }
  }
  f.RejectUnknown();
  if (!f.ok()) return Status::Error(f.error());
  if (c.kernel_path.empty()) return Status::Error("config.kernel must not be empty");
  c.vcpus = uint32_t(vcpus);
  c.memory_mib = memory;
  if (c.hugepages && c.memory_mib % 2) return Status::Error(Format("config.memoryMiB %llu must be even with hugepages (2 MiB pages)", (unsigned long long)c.memory_mib));
  if (VirtioSlotCount(c) > x86::layout::kVirtioMaxSlots)
    return Status::Error(Format("config: %u virtio devices (vsock, rng, blocks) exceed the %u slots", VirtioSlotCount(c),
                                x86::layout::kVirtioMaxSlots));
  return c;
}

}  // namespace vmm::kvm
