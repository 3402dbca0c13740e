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
  return (c.vsock.enabled ? 1 : 0) + (c.rng ? 1 : 0) + uint32_t(c.blocks.size()) + uint32_t(c.nets.size());
}

static bool ParseMac(const std::string& text, std::array<uint8_t, 6>* mac) {
  if (text.size() != 17) return false;
  for (size_t i = 0; i < 6; i++) {
    if (i < 5 && text[3 * i + 2] != ':') return false;
    unsigned v = 0;
    for (size_t j = 0; j < 2; j++) {
      char ch = text[3 * i + j];
      unsigned d = ch >= '0' && ch <= '9' ? unsigned(ch - '0')
                   : ch >= 'a' && ch <= 'f' ? unsigned(ch - 'a' + 10)
                   : ch >= 'A' && ch <= 'F' ? unsigned(ch - 'A' + 10) : 16u;
      if (d > 15) return false;
      v = v * 16 + d;
    }
    (*mac)[i] = uint8_t(v);
  }
  return true;
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
  f.Bool("seccomp", &c.seccomp);

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
  if (const json::Value* v = f.Take("net", false)) {
    if (!v->is_array()) return Status::Error("config.net must be an array");
    for (size_t i = 0; i < v->items().size(); i++) {
      const json::Value& item = v->items()[i];
      const std::string where = Format("config.net[%zu]", i);
      if (!item.is_object()) return Status::Error(where + " must be an object");
      Fields nf(item, where);
      NetConfig n;
      uint64_t fd = ~0ull, mtu = n.mtu;
      std::string mac;
      nf.Str("tap", &n.tap);
      nf.Uint("tapFd", 0, 0x7fffffff, &fd);
      nf.Str("mac", &mac, true);
      // 68: the IPv4 minimum; 65535: what the 16-bit config field holds.
      nf.Uint("mtu", 68, 65535, &mtu);
      if (const json::Value* rl = nf.Take("rateLimit", false)) {
        if (!rl->is_object()) return Status::Error(where + ".rateLimit must be an object");
        Fields rf(*rl, where + ".rateLimit");
        for (const char* dir : {"rx", "tx"}) {
          const json::Value* d = rf.Take(dir, false);
          if (!d) continue;
          const std::string dwhere = where + ".rateLimit." + dir;
          if (!d->is_object()) return Status::Error(dwhere + " must be an object");
          Fields df(*d, dwhere);
          NetRateConfig* r = std::string(dir) == "rx" ? &n.rx : &n.tx;
          // Bursts are capped where the token bucket's integer arithmetic stays exact (2^32).
          df.Uint("bytesPerSec", 0, 1ull << 40, &r->bytes_per_sec);
          df.Uint("bytesBurst", 0, 1ull << 32, &r->bytes_burst);
          df.Uint("packetsPerSec", 0, 1ull << 32, &r->packets_per_sec);
          df.Uint("packetsBurst", 0, 1ull << 32, &r->packets_burst);
          df.RejectUnknown();
          if (!df.ok()) return Status::Error(df.error());
        }
        rf.RejectUnknown();
        if (!rf.ok()) return Status::Error(rf.error());
      }
      nf.RejectUnknown();
      if (!nf.ok()) return Status::Error(nf.error());
      if (n.tap.empty() == (fd == ~0ull)) return Status::Error(where + " needs exactly one of \"tap\" and \"tapFd\"");
      if (n.tap.size() > 15) return Status::Error(where + ".tap \"" + n.tap + "\" is longer than 15 bytes");
      if (!ParseMac(mac, &n.mac)) return Status::Error(where + ".mac \"" + mac + "\" is not of the form 02:00:00:00:00:01");
      if (n.mac[0] & 1) return Status::Error(where + ".mac " + mac + " is a multicast address");
      if (n.mac == std::array<uint8_t, 6>{}) return Status::Error(where + ".mac must not be all zeros");
      n.tap_fd = fd == ~0ull ? -1 : int(fd);
      n.mtu = uint16_t(mtu);
      c.nets.push_back(std::move(n));
    }
  }
  f.RejectUnknown();
  if (!f.ok()) return Status::Error(f.error());
  if (c.kernel_path.empty()) return Status::Error("config.kernel must not be empty");
  c.vcpus = uint32_t(vcpus);
  c.memory_mib = memory;
  if (c.hugepages && c.memory_mib % 2) return Status::Error(Format("config.memoryMiB %llu must be even with hugepages (2 MiB pages)", (unsigned long long)c.memory_mib));
  if (VirtioSlotCount(c) > x86::layout::kVirtioMaxSlots)
    return Status::Error(Format("config: %u virtio devices (vsock, rng, blocks, nets) exceed the %u slots", VirtioSlotCount(c),
                                x86::layout::kVirtioMaxSlots));
  return c;
}

}  // namespace vmm::kvm
