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
  CHECK(r->seccomp);
  CHECK_EQ(vmm::kvm::VirtioSlotCount(r.value()), 0u);
}

VMM_TEST(kvm_config_every_field) {
  auto r = vmm::kvm::ParseVmConfig(R"({
    "kernel": "/k", "initrd": "/i", "cmdline": "console=ttyS0", "vcpus": 4, "memoryMiB": 512,
    "hugepages": true, "serialOutput": "/tmp/s", "controlSocket": "/tmp/c", "rng": true,
    "i8042": false, "acpiPoweroff": false, "seccomp": false,
    "vsock": {"guestCid": 42, "udsPath": "/tmp/v"},
    "blocks": [{"path": "/d", "readOnly": true, "serial": "root"}, {"readOnly": true}, {}]})");
  CHECK(r.ok());
  if (!r.ok()) return;
  CHECK(r->initrd_path == "/i" && r->cmdline == "console=ttyS0");
  CHECK_EQ(r->vcpus, 4u);
  CHECK_EQ(r->memory_mib, 512u);
  CHECK(r->hugepages && r->rng && !r->i8042 && !r->acpi_poweroff && !r->seccomp);
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

VMM_TEST(kvm_config_net) {
  auto r = vmm::kvm::ParseVmConfig(R"({"kernel": "/k", "net": [
    {"tap": "tap0", "mac": "02:aA:00:00:00:01"},
    {"tapFd": 7, "mac": "02:00:00:00:00:02", "mtu": 9000,
     "rateLimit": {"rx": {"bytesPerSec": 1000000, "bytesBurst": 65536},
                   "tx": {"packetsPerSec": 1000, "packetsBurst": 10}}}]})");
  CHECK(r.ok());
  if (!r.ok()) return;
  const auto& c = r.value();
  CHECK_EQ(c.nets.size(), size_t{2});
  CHECK(c.nets[0].tap == "tap0");
  CHECK_EQ(c.nets[0].tap_fd, -1);
  CHECK_EQ(c.nets[0].mac[1], 0xaa);
  CHECK_EQ(c.nets[0].mtu, 1500);
  CHECK_EQ(c.nets[1].tap_fd, 7);
  CHECK_EQ(c.nets[1].mtu, 9000);
  CHECK_EQ(c.nets[1].rx.bytes_per_sec, uint64_t{1000000});
  CHECK_EQ(c.nets[1].rx.bytes_burst, uint64_t{65536});
  CHECK_EQ(c.nets[1].tx.packets_per_sec, uint64_t{1000});
  CHECK_EQ(c.nets[1].rx.packets_per_sec, uint64_t{0});
  CHECK_EQ(vmm::kvm::VirtioSlotCount(c), 2u);

  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": {}})"), "config.net must be an array"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"mac": "02:00:00:00:00:01"}]})"),
            "config.net[0] needs exactly one of \"tap\" and \"tapFd\""));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "tapFd": 3, "mac": "02:00:00:00:00:01"}]})"),
            "needs exactly one of"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t"}]})"), "config.net[0].mac is required"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02:00:00:00:00"}]})"),
            "config.net[0].mac \"02:00:00:00:00\" is not of the form"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02-00-00-00-00-01"}]})"), "is not of the form"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "03:00:00:00:00:01"}]})"), "is a multicast address"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "00:00:00:00:00:00"}]})"), "all zeros"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "0123456789abcdef", "mac": "02:00:00:00:00:01"}]})"),
            "config.net[0].tap \"0123456789abcdef\" is longer than 15 bytes"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02:00:00:00:00:01", "mtu": 67}]})"),
            "config.net[0].mtu must be an integer in 68..65535, not 67"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tapFd": -1, "mac": "02:00:00:00:00:01"}]})"), "config.net[0].tapFd"));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02:00:00:00:00:01", "queues": 2}]})"),
            "config.net[0]: unknown field \"queues\""));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02:00:00:00:00:01", "rateLimit": {"rx": {"bps": 1}}}]})"),
            "config.net[0].rateLimit.rx: unknown field \"bps\""));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02:00:00:00:00:01", "rateLimit": {"up": {}}}]})"),
            "config.net[0].rateLimit: unknown field \"up\""));
  CHECK(Has(ErrorOf(R"({"kernel": "/k", "net": [{"tap": "t", "mac": "02:00:00:00:00:01", "rateLimit": {"tx": {"bytesBurst": 5000000000}}}]})"),
            "config.net[0].rateLimit.tx.bytesBurst must be an integer in 0..4294967296"));
}
