// vc-vmm caps: what this host's /dev/kvm offers, as one JSON object — the vendor module (PVM or
// not), every KVM_CAP_* the core uses or might, and the vCPU-level facts (TSC frequency, CPUID
// entries, MSRs KVM saves). Exit 0 when the core can run VMs here, 1 when it cannot (the JSON
// says why).
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "common/json.h"
#include "kvm/kvm.h"

int CapsMain(int, char**) {
  using json::Value;
  Value out = Value::object();
  out.set("device", Value::string(vmm::kvm::DevicePath()));
  const char* flavor = "none";
  for (const char* m : {"kvm_intel", "kvm_amd", "kvm_pvm"}) {
    struct stat st;
    if (stat((std::string("/sys/module/") + m).c_str(), &st) == 0) {
      flavor = m;
      break;
    }
  }
  out.set("flavor", Value::string(flavor));
  auto kvm = vmm::kvm::Kvm::Open();
  if (!kvm.ok()) {
    out.set("usable", Value::boolean(false));
    out.set("reason", Value::string(kvm.error()));
    std::printf("%s\n", json::serialize(out).c_str());
    return 1;
  }
  Value caps = Value::object();
  for (const auto& c : vmm::kvm::ReportCapabilities(kvm.value())) caps.set(c.name, Value::number(c.value));
  out.set("capabilities", std::move(caps));
  if (auto cpuid = kvm->SupportedCpuid(); cpuid.ok()) out.set("supportedCpuidEntries", Value::number(double(cpuid->size())));
  if (auto msrs = kvm->MsrIndexList(); msrs.ok()) out.set("savedMsrs", Value::number(double(msrs->size())));
  // The TSC frequency is a vCPU-level query: make a throwaway VM and vCPU to ask.
  if (auto vm = kvm->CreateVm(); vm.ok()) {
    if (auto vcpu = vm->CreateVcpu(0); vcpu.ok()) {
      int khz = ioctl(vcpu->fd(), KVM_GET_TSC_KHZ, 0);
      if (khz > 0) out.set("tscKhz", Value::number(khz));
    }
  }
  vmm::kvm::Status required = vmm::kvm::CheckRequiredCapabilities(kvm.value());
  out.set("usable", Value::boolean(required.ok()));
  if (!required.ok()) out.set("reason", Value::string(required.error()));
  std::printf("%s\n", json::serialize(out).c_str());
  return required.ok() ? 0 : 1;
}
