#include "vm/snapshot_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "common/read_file.h"

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

Status OpenSnapshot(const std::string& state_path, const std::string& memory_path, OpenedSnapshot* out) {
  UniqueFd sfd(::open(state_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!sfd.valid()) return ErrnoStatus(("state file " + state_path).c_str());
  if (!vc::ReadFdBounded(sfd.get(), snapshot::kMaxStateFileSize, &out->state_text))
    return Status::Error(Format("state file %s: unreadable or over the %llu-byte limit", state_path.c_str(),
                                (ull)snapshot::kMaxStateFileSize));
  auto read = snapshot::ReadSnapshot(reinterpret_cast<const uint8_t*>(out->state_text.data()), out->state_text.size());
  if (!read.ok()) return Status::Error(state_path + ": " + read.error());
  out->info = std::move(read.value());
  auto saved = ParseVmConfig(out->info.vm.config_json);
  if (!saved.ok()) return Status::Error(state_path + ": the snapshot's own config: " + saved.error());
  out->saved_config = std::move(saved.value());

  out->memory = UniqueFd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!out->memory.valid()) return ErrnoStatus(("memory file " + memory_path).c_str());
  struct stat st;
  if (::fstat(out->memory.get(), &st) < 0) return ErrnoStatus(("memory file " + memory_path).c_str());
  if (!S_ISREG(st.st_mode)) return Status::Error("memory file " + memory_path + " is not a regular file");
  std::vector<uint8_t> header(snapshot::kMemoryHeaderSize);
  ssize_t got = ::pread(out->memory.get(), header.data(), header.size(), 0);
  if (got < 0) return ErrnoStatus(("memory file " + memory_path).c_str());
  Status s = snapshot::CheckMemoryFileHeader(out->info.memory, uint64_t(st.st_size), header.data(), size_t(got));
  if (!s.ok()) return Status::Error(memory_path + ": " + s.error());
  return Status();
}

}  // namespace vmm::kvm
