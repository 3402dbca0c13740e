// The floor under any KVM VMM's start on this host: what the kernel alone charges for a VM that can
// run one instruction — open /dev/kvm, KVM_CREATE_VM, guest RAM (anonymous mmap, MAP_NORESERVE) as
// memory slot 0, KVM_CREATE_VCPU and its kvm_run mapping. No irqchip, no registers, no guest code:
// a VMM cannot start a VM faster than this. Each iteration is timed (CLOCK_MONOTONIC), then torn
// down (timed separately); the first iterations are warm-up and not counted.
//
//   bench-kvm-floor [--iterations N] [--warmup N] [--memory-mib M] [--device PATH] [--hold-vm]
//
// --hold-vm keeps one more VM with a vCPU open for the whole run. A vCPU created without an in-kernel
// irqchip (as here) takes a reference on KVM's kvm_has_noapic_vcpu static key, and its destruction
// drops it: with no other such vCPU alive, every iteration patches kernel text twice (jump labels).
// No VMM pays that (vc-vmm and QEMU create the irqchip first). Where text patching is dear - inside
// the nested harness's TCG-emulated L1 it took minutes for 50 iterations - the held vCPU keeps the
// key's count above zero, so the loop measures the VM, not the patching.
//
// Prints one JSON object on stdout (medians, p95 and min in microseconds, per step too, and every
// iteration's total, so that several runs can be pooled); errors go to stderr with exit status 1.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

// Nearest-rank percentile of a sorted copy (p in 0..100).
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(p / 100.0 * double(v.size()) + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > v.size()) rank = v.size();
  return v[rank - 1];
}

std::string Stats(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  char buf[200];
  std::snprintf(buf, sizeof buf, "{\"n\":%zu,\"median\":%.1f,\"p95\":%.1f,\"min\":%.1f,\"max\":%.1f,\"mean\":%.1f}", v.size(),
                Percentile(v, 50), Percentile(v, 95), v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()),
                v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()), v.empty() ? 0.0 : sum / double(v.size()));
  return buf;
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "bench-kvm-floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

struct Sample {
  double open_create_vm, memory_region, create_vcpu, total, teardown;
};

Sample OneVm(const char* device, uint64_t mem_bytes) {
  Sample s{};
  const double t0 = NowUs();
  int kvm = ::open(device, O_RDWR | O_CLOEXEC);
  if (kvm < 0) Die("open");
  int vm = ::ioctl(kvm, KVM_CREATE_VM, 0UL);
  if (vm < 0) Die("KVM_CREATE_VM");
  const double t1 = NowUs();
  void* ram = ::mmap(nullptr, mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) Die("mmap guest RAM");
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = mem_bytes;
  region.userspace_addr = reinterpret_cast<uint64_t>(ram);
  if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) Die("KVM_SET_USER_MEMORY_REGION");
  const double t2 = NowUs();
  int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0UL);
  if (vcpu < 0) Die("KVM_CREATE_VCPU");
  int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) Die("KVM_GET_VCPU_MMAP_SIZE");
  void* run = ::mmap(nullptr, size_t(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) Die("mmap kvm_run");
  const double t3 = NowUs();
  ::munmap(run, size_t(run_size));
  ::close(vcpu);
  ::close(vm);
  ::close(kvm);
  ::munmap(ram, mem_bytes);
  const double t4 = NowUs();
  s.open_create_vm = t1 - t0;
  s.memory_region = t2 - t1;
  s.create_vcpu = t3 - t2;
  s.total = t3 - t0;
  s.teardown = t4 - t3;
  return s;
}

// Creates a VM with one vCPU (no irqchip) and leaves it open until the process exits.
void HoldVm(const char* device) {
  int kvm = ::open(device, O_RDWR | O_CLOEXEC);
  if (kvm < 0) Die("open");
  int vm = ::ioctl(kvm, KVM_CREATE_VM, 0UL);
  if (vm < 0) Die("KVM_CREATE_VM (held VM)");
  if (::ioctl(vm, KVM_CREATE_VCPU, 0UL) < 0) Die("KVM_CREATE_VCPU (held VM)");
}

long ArgValue(int argc, char** argv, int& i) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "bench-kvm-floor: %s needs a value\n", argv[i]);
    std::exit(2);
  }
  char* end = nullptr;
  long v = std::strtol(argv[++i], &end, 10);
  if (!end || *end || v < 0) {
    std::fprintf(stderr, "bench-kvm-floor: bad value for %s: %s\n", argv[i - 1], argv[i]);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 50, warmup = 3, memory_mib = 128;
  bool hold_vm = false;
  const char* override = std::getenv("VC_KVM_DEVICE");  // as the VMM: tests and the bench hide the device with it
  const char* device = override != nullptr && *override != '\0' ? override : "/dev/kvm";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--iterations") iterations = ArgValue(argc, argv, i);
    else if (a == "--warmup") warmup = ArgValue(argc, argv, i);
    else if (a == "--memory-mib") memory_mib = ArgValue(argc, argv, i);
    else if (a == "--device" && i + 1 < argc) device = argv[++i];
    else if (a == "--hold-vm") hold_vm = true;
    else {
      std::fprintf(stderr, "usage: bench-kvm-floor [--iterations N] [--warmup N] [--memory-mib M] [--device PATH] [--hold-vm]\n");
      return 2;
    }
  }
  if (iterations < 1 || memory_mib < 1) {
    std::fprintf(stderr, "bench-kvm-floor: --iterations and --memory-mib must be at least 1\n");
    return 2;
  }
  const uint64_t bytes = uint64_t(memory_mib) << 20;
  if (hold_vm) HoldVm(device);
  for (long i = 0; i < warmup; i++) OneVm(device, bytes);
  std::vector<double> create_vm, region, vcpu, total, teardown;
  for (long i = 0; i < iterations; i++) {
    Sample s = OneVm(device, bytes);
    create_vm.push_back(s.open_create_vm);
    region.push_back(s.memory_region);
    vcpu.push_back(s.create_vcpu);
    total.push_back(s.total);
    teardown.push_back(s.teardown);
  }
  std::string samples;
  for (double x : total) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.1f", samples.empty() ? "" : ",", x);
    samples += buf;
  }
  std::printf(
      "{\"iterations\":%ld,\"warmup\":%ld,\"memoryMiB\":%ld,\"heldVm\":%s,\"totalUs\":%s,\"teardownUs\":%s,"
      "\"stepsUs\":{\"openAndCreateVm\":%s,\"memoryRegion\":%s,\"createVcpuAndMapRun\":%s},\"totalSamplesUs\":[%s]}\n",
      iterations, warmup, memory_mib, hold_vm ? "true" : "false", Stats(total).c_str(), Stats(teardown).c_str(), Stats(create_vm).c_str(),
      Stats(region).c_str(), Stats(vcpu).c_str(), samples.c_str());
  return 0;
}
