// libFuzzer entry point: a container's user ("uid", "uid:gid", "name", "name:group") resolved
// against the container's own /etc/passwd and /etc/group (native/agent/users.h), files that come
// from the image or that the container wrote: untrusted text.
//
// Input: the user spec up to the first '\n', then /etc/passwd's text up to the first NUL byte, then
// /etc/group's. Checked: it resolves or says why; a resolved user has neither id (uid_t)-1 (the
// kernel's "unchanged"), and its groups start with its primary group and hold no duplicates.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/fuzz/fuzz_check.h"
#include "agent/users.h"

using agent_fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  std::string spec = input.substr(0, nl);
  std::string rest = nl == std::string::npos ? "" : input.substr(nl + 1);
  size_t nul = rest.find('\0');
  std::string passwd = rest.substr(0, nul);
  std::string group = nul == std::string::npos ? "" : rest.substr(nul + 1);

  Credentials c;
  std::string why;
  if (!resolve_user_in(spec, passwd, group, &c, &why)) {
    require(!why.empty());
    return 0;
  }
  require(c.uid != static_cast<uid_t>(-1) && c.gid != static_cast<gid_t>(-1));
  require(!c.groups.empty() && c.groups[0] == c.gid);
  for (size_t i = 0; i < c.groups.size(); i++) {
    require(c.groups[i] != static_cast<gid_t>(-1));
    for (size_t j = i + 1; j < c.groups.size(); j++) require(c.groups[i] != c.groups[j]);
  }
  return 0;
}
