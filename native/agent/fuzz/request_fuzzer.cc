// libFuzzer entry point: the argument checks of the agent's requests (docs/agent-protocol.md,
// "Requests"), on a REQUEST payload a hostile host chose: create_container's (id, image, process,
// user, hostname, limits, confinement with its security, seccomp program, rlimits, sysctls and
// mounts, binds, joinNamespaces), exec_container's confinement overrides, configure_network's,
// put_file's (path, kind, base64 data) and a container id. Only the checks run: nothing is created.
//
// Input: the payload's JSON text. Checked, for every check: it accepts, or it rejects with a reason
// that names the field ("name: why", as BAD_REQUEST says it); what create_container and put_file
// accept keeps their promises (a valid id, an absolute cwd, absolute mount and bind destinations,
// a seccomp program of whole instructions, decoded data that encodes back to what was sent).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/args.h"
#include "agent/base64.h"
#include "agent/bind_ops.h"
#include "agent/binds.h"
#include "agent/confine_requests.h"
#include "agent/container.h"
#include "agent/container_requests.h"
#include "agent/fuzz/fuzz_check.h"
#include "agent/network.h"
#include "agent/oci_mounts.h"
#include "agent/put_file.h"
#include "common/json.h"

namespace {

using agent_fuzz::require;

// A rejection names its field: "field: why" (a field may be a key the host chose, so its text is
// not judged).
void CheckReason(const Args& args) {
  size_t colon = args.error().find(": ");
  require(colon != std::string::npos && colon > 0);
}

// What confine_root and confine_credentials rely on: capability sets capset(2) accepts, whole
// BPF instructions, one rlimit per resource with soft <= hard.
void CheckConfinement(const Confinement& c) {
  require(c.seccomp.size() % 8 == 0);
  if (c.has_caps) {
    require((c.caps.effective & ~c.caps.permitted) == 0 && (c.caps.inheritable & ~c.caps.bounding) == 0);
    require((c.caps.ambient & ~(c.caps.permitted & c.caps.inheritable)) == 0);
  }
  for (size_t i = 0; i < c.rlimits.size(); i++) {
    require(c.rlimits[i].soft <= c.rlimits[i].hard && c.rlimits[i].resource >= 0 && c.rlimits[i].resource < kRlimitCount);
    for (size_t j = 0; j < i; j++) require(c.rlimits[i].resource != c.rlimits[j].resource);
  }
  for (gid_t g : c.additional_gids) require(g != static_cast<gid_t>(-1));
}

void CheckCreate(const json::Value& req, bool test_mode) {
  Args args(req);
  CreateSpec spec;
  if (!create_container_args(args, test_mode, &spec)) return CheckReason(args);
  Args again(req);
  std::string id;
  require(container_name_arg(again, "id", &id) && id == spec.id);
  require(!spec.exec.argv.empty() && !spec.exec.cwd.empty() && spec.exec.cwd[0] == '/');
  require(!spec.user.empty() && !spec.hostname.empty() && spec.hostname.size() <= 64);
  require(test_mode || spec.image_path.empty());
  CheckConfinement(spec.confine);
  std::string why;
  for (const OciMount& m : spec.confine.mounts) require(oci_path_ok(m.destination, &why));
  for (const BindSpec& b : spec.binds) require(!b.destination.empty() && b.destination[0] == '/');
}

void CheckExecConfinement(const json::Value& req) {
  Args args(req);
  ConfineOverrides o;
  if (!confine_exec_args(args, &o)) return CheckReason(args);
  CheckConfinement(o.values);
}

void CheckNetwork(const json::Value& req) {
  Args args(req);
  if (!network_config_args(args)) CheckReason(args);
}

void CheckPut(const json::Value& req, BindKind kind) {
  Args args(req);
  PutRequest p;
  if (!put_file_args(args, kind, &p)) return CheckReason(args);
  std::vector<std::string> parts;
  std::string why;
  require(put_path_components(p.path, &parts, &why));
  for (const std::string& part : parts) require(part != ".." && !part.empty());
  const json::Value* data = req.find("data");
  if (data && data->is_string()) require(base64_encode(p.data) == data->as_string());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json::Value req;
  std::string error;
  if (!json::parse(text, &req, &error) || !req.is_object()) return 0;
  CheckCreate(req, false);
  CheckCreate(req, true);
  CheckExecConfinement(req);
  CheckNetwork(req);
  CheckPut(req, BindKind::kDir);
  CheckPut(req, BindKind::kFile);
  return 0;
}
