// vc-vmm snapshot verify --state FILE --memory FILE: everything a restore checks before it uses a
// snapshot (OpenSnapshot, the same code: the whole state file, its own config, the memory file's
// size and header page), and then what a restore does not read: all of RAM, whose CRC-32C must be the state file's ramCrc
// (docs/snapshots.md "Checking the memory file"). No KVM: it reads the two files only. For a
// template when it is made or copied. Exit 0 with one JSON line, 1 with the reason, 2 for usage.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/json.h"
#include "snapshot/crc32c.h"
#include "vm/snapshot_files.h"

namespace {

namespace snap = vmm::snapshot;

constexpr size_t kChunk = 4u << 20;

int Fail(const std::string& why) {
  std::fprintf(stderr, "vc-vmm snapshot verify: %s\n", why.c_str());
  return 1;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The CRC-32C of the file's bytes [offset, offset + len), read in chunks.
bool CrcOfRange(int fd, uint64_t offset, uint64_t len, uint32_t* crc, std::string* why) {
  std::vector<uint8_t> buf(kChunk);
  uint32_t c = 0;
  for (uint64_t done = 0; done < len;) {
    size_t want = static_cast<size_t>(len - done < kChunk ? len - done : kChunk);
    ssize_t got = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      *why = Errno("reading RAM at file offset " + std::to_string(offset + done));
      return false;
    }
    if (got == 0) {
      *why = "the file ended " + std::to_string(done) + " bytes into RAM (it shrank while being read?)";
      return false;
    }
    c = snap::Crc32c(c, buf.data(), static_cast<size_t>(got));
    done += static_cast<uint64_t>(got);
  }
  *crc = c;
  return true;
}

int Verify(const std::string& state_path, const std::string& memory_path) {
  vmm::kvm::OpenedSnapshot opened;
  vmm::kvm::Status s = vmm::kvm::OpenSnapshot(state_path, memory_path, &opened);
  if (!s.ok()) return Fail(s.error());
  const snap::SnapshotInfo& info = opened.info;
  const int fd = opened.memory.get();
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint32_t crc = 0;
  std::string why;
  if (!CrcOfRange(fd, info.memory.ram_offset, info.memory.ram_bytes, &crc, &why)) return Fail(memory_path + ": " + why);
  s = snap::CheckRamCrc(info.memory, crc);
  if (!s.ok()) return Fail(memory_path + ": " + s.error());

  json::Value out = json::Value::object();
  out.set("ok", json::Value::boolean(true));
  out.set("vcpus", json::Value::number(info.vm.vcpus));
  out.set("ramBytes", json::Value::number(static_cast<double>(info.memory.ram_bytes)));
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08x", crc);
  out.set("ramCrc", json::Value::string(hex));
  std::printf("%s\n", json::serialize(out).c_str());
  return 0;
}

}  // namespace

int SnapshotMain(int argc, char** argv) {
  static const char* kUsage = "usage: vc-vmm snapshot verify --state FILE --memory FILE\n";
  if (argc < 2 || std::strcmp(argv[1], "verify") != 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string state, memory;
  for (int i = 2; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--state" && i + 1 < argc) state = argv[++i];
    else if (arg == "--memory" && i + 1 < argc) memory = argv[++i];
    else {
      std::fprintf(stderr, "vc-vmm snapshot verify: unknown or incomplete argument \"%s\"\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (state.empty() || memory.empty()) {
    std::fprintf(stderr, "vc-vmm snapshot verify: %s is required\n%s", state.empty() ? "--state" : "--memory", kUsage);
    return 2;
  }
  return Verify(state, memory);
}
