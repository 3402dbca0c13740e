// VmConfigJson: a VmConfig back to the JSON ParseVmConfig reads, for the snapshot's `vm` section
// (the machine a restore must rebuild). Rate limits are left out: a restore takes the pod's own.
#include <cstdio>

#include "common/json.h"
#include "vm/config.h"

namespace vmm::kvm {

std::string VmConfigJson(const VmConfig& c) {
  using json::Value;
  Value out = Value::object();
  out.set("kernel", Value::string(c.kernel_path));
  if (!c.initrd_path.empty()) out.set("initrd", Value::string(c.initrd_path));
  out.set("cmdline", Value::string(c.cmdline));
  out.set("vcpus", Value::number(c.vcpus));
  out.set("memoryMiB", Value::number(double(c.memory_mib)));
  out.set("hugepages", Value::boolean(c.hugepages));
  out.set("rng", Value::boolean(c.rng));
  out.set("i8042", Value::boolean(c.i8042));
  out.set("acpiPoweroff", Value::boolean(c.acpi_poweroff));
  if (c.vsock.enabled) {
    Value v = Value::object();
    v.set("guestCid", Value::number(double(c.vsock.guest_cid)));
    v.set("udsPath", Value::string(c.vsock.uds_path));
    out.set("vsock", std::move(v));
  }
  Value blocks = Value::array();
  for (const BlockConfig& b : c.blocks) {
    Value v = Value::object();
    if (!b.path.empty()) v.set("path", Value::string(b.path));
    v.set("readOnly", Value::boolean(b.read_only));
    if (!b.serial.empty()) v.set("serial", Value::string(b.serial));
    blocks.push(std::move(v));
  }
  out.set("blocks", std::move(blocks));
  Value nets = Value::array();
  for (const NetConfig& n : c.nets) {
    Value v = Value::object();
    if (!n.tap.empty()) v.set("tap", Value::string(n.tap));
    else v.set("tapFd", Value::number(n.tap_fd));
    char mac[18];
    std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", n.mac[0], n.mac[1], n.mac[2], n.mac[3], n.mac[4], n.mac[5]);
    v.set("mac", Value::string(mac));
    v.set("mtu", Value::number(n.mtu));
    nets.push(std::move(v));
  }
  out.set("net", std::move(nets));
  return json::serialize(out);
}

// The restore's config must describe the machine the snapshot holds; only its wiring differs.
vc::Status CheckSameMachine(const VmConfig& saved, const VmConfig& config) {
  using vc::Format;
  auto differ = [](const char* field, const std::string& snap, const std::string& given) {
    return vc::Status::Error(Format("restore: config.%s is %s, but the snapshot's VM has %s", field, given.c_str(), snap.c_str()));
  };
  auto str = [](uint64_t v) { return std::to_string(v); };
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  if (saved.vcpus != config.vcpus) return differ("vcpus", str(saved.vcpus), str(config.vcpus));
  if (saved.memory_mib != config.memory_mib) return differ("memoryMiB", str(saved.memory_mib), str(config.memory_mib));
  if (saved.vsock.enabled != config.vsock.enabled) return differ("vsock", saved.vsock.enabled ? "one" : "none", config.vsock.enabled ? "one" : "none");
  if (saved.vsock.enabled && saved.vsock.guest_cid != config.vsock.guest_cid)
    return differ("vsock.guestCid", str(saved.vsock.guest_cid), str(config.vsock.guest_cid));
  if (saved.rng != config.rng) return differ("rng", flag(saved.rng), flag(config.rng));
  if (saved.i8042 != config.i8042) return differ("i8042", flag(saved.i8042), flag(config.i8042));
  if (saved.acpi_poweroff != config.acpi_poweroff) return differ("acpiPoweroff", flag(saved.acpi_poweroff), flag(config.acpi_poweroff));
  if (saved.blocks.size() != config.blocks.size()) return differ("blocks", str(saved.blocks.size()) + " slots", str(config.blocks.size()) + " slots");
  for (size_t i = 0; i < saved.blocks.size(); i++)
    if (saved.blocks[i].read_only != config.blocks[i].read_only)
      return differ(Format("blocks[%zu].readOnly", i).c_str(), flag(saved.blocks[i].read_only), flag(config.blocks[i].read_only));
  if (saved.nets.size() != config.nets.size()) return differ("net", str(saved.nets.size()) + " devices", str(config.nets.size()) + " devices");
  return vc::Status();
}

}  // namespace vmm::kvm
