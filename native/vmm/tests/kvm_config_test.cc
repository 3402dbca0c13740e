// The vc-vmm JSON config: defaults, every field, and errors that name the field and the value.
#include <string>

#include "vm/config.h"
#include "tests/check.h"

namespace {
std::string ErrorOf(const char* json) {
  auto r = vmm::kvm::ParseVmConfig(json);
  return r.ok() ? "" : r.error();
}
bool Has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
}  // namespace

VMM_TEST(kvm_config_minimal_gets_defaults) {
  auto r = vmm::kvm::ParseVmConfig(R"({"kernel": "/k"})");
  CHECK(r.ok());
  CHECK(r->kernel_path == "/k");
  CHECK_EQ(r->vcpus, 1u);
  CHECK_EQ(r->memory_mib, 128u);
  CHECK(!r->vsock.enabled);
  CHECK(r->i8042);
  CHECK(r->acpi_poweroff);
  CHECK_EQ(vmm::kvm::VirtioSlotCount(r.value()), 0u);
}

VMM_TEST(kvm_config_every_field) {
  auto r = vmm::kvm::ParseVmConfig(R"({
    "kernel": "/k", "initrd": "/i", "cmdline": "console=ttyS0", "vcpus": 4, "memoryMiB": 512,
    "hugepages": true, "serialOutput": "/tmp/s", "controlSocket": "/tmp/c", "rng": true,
    "i8042": false, "acpiPoweroff": false,
    "vsock": {"guestCid": 42, "udsPath": "/tmp/v"},
    "blocks": [{"path": "/d", "readOnly": true, "serial": "root"}, {"readOnly": true}, {}]})");
  CHECK(r.ok());
  if (!r.ok()) return;
  CHECK(r->initrd_path == "/i" && r->cmdline == "console=ttyS0");
  CHECK_EQ(r->vcpus, 4u);
  CHECK_EQ(r->memory_mib, 512u);
  CHECK(r->hugepages && r->rng && !r->i8042 && !r->acpi_poweroff);
  CHECK(r->vsock.enabled && r->vsock.guest_cid == 42 && r->vsock.uds_path == "/tmp/v");
  CHECK_EQ(r->blocks.size(), size_t(3));
  CHECK(r->blocks[0].path == "/d" && r->blocks[0].read_only && r->blocks[0].serial == "root");
  CHECK(r->blocks[1].path.empty() && r->blocks[1].read_only);
  CHECK(!r->blocks[2].read_only);
  CHECK_EQ(vmm::kvm::VirtioSlotCount(r.value()), 5u);
}

VMM_TEST(kvm_config_errors_name_the_field_and_value) {
  CHECK(Has(ErrorOf("{"), "not valid JSON"));
  CHECK(Has(ErrorOf("[]"), "must be a JSON object"));
  CHECK(Has(ErrorOf("{}"), "config.kernel is required"));
  CHECK(Has(ErrorOf(R"({"kernel": 5})"), "config.kernel must be a string"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "vcpus": 0})"), "config.vcpus must be an integer in 1..254, not 0"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "vcpus": 1.5})"), "config.vcpus"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "memoryMiB": 4096})"), "config.memoryMiB must be an integer in 2..3072, not 4096"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "memroyMiB": 64})"), "unknown field \"memroyMiB\""));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "hugepages": "yes"})"), "config.hugepages must be true or false"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "hugepages": true, "memoryMiB": 65})"), "must be even"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "vsock": {"guestCid": 2, "udsPath": "/v"}})"), "config.vsock.guestCid"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "vsock": {"guestCid": 3}})"), "config.vsock.udsPath is required"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "vsock": {"udsPath": "/v", "port": 1}})"), "config.vsock: unknown field \"port\""));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "blocks": [{"path": "/d", "serial": "123456789012345678901"}]})"),
            "config.blocks[0].serial \"123456789012345678901\" is longer than 20 bytes"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "blocks": [5]})"), "config.blocks[0] must be an object"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "blocks": [{"serial": "x"}]})"), "needs a path"));
  std::string many = R"({"kernel": "/k", "rng": true, "blocks": [)";
  for (int i = 0; i < 19; i++) many += i ? ",{}" : "{}";
  many += "]}";
  CHECK(Has(ErrorOf(many.c_str()), "20 virtio devices"));
}
