// The request a client sends `vc-vmm launcher` (cmd/launcher.cc): one JSON line naming the
// `vc-vmm run` (or `restore`) to perform in a pre-forked spare process, exactly as though the client had spawned
// `vc-vmm` with that argv, environment, working directory and network namespace.
//
//   {"argv":["run","--config","/p/vmm.json","--detach",...],"env":{"K":"V"},"cwd":"/",
//    "netns":"/run/netns/x","nonce":"<32 hex digits>"}
//
// The reply is the run's stdout and stderr as one stream, then a last line
// "\n<nonce> exit <code>\n" (the nonce makes the trailer one that no output can forge).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace vmm::launcher {

struct LaunchRequest {
  std::vector<std::string> argv;  // argv[0] is the subcommand: "run" or "restore"
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;
  std::string netns;  // "" : the launcher's own
  std::string nonce;
};

constexpr size_t kMaxRequestBytes = 1 << 20;
constexpr size_t kMaxArgs = 256;
constexpr size_t kMaxEnv = 256;
constexpr size_t kMaxStringBytes = 4096;

// Checks every field (an error names it and the bad value); nothing of a bad request is used.
vc::Result<LaunchRequest> ParseLaunchRequest(const std::string& line);

// The reply's last line for `nonce` and `code`.
std::string ExitTrailer(const std::string& nonce, int code);

}  // namespace vmm::launcher
