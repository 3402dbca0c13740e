#include "cmd/launch_request.h"

#include <cstdio>

#include "common/json.h"

namespace vmm::launcher {

namespace {

using vc::Status;

// A bad value in a message: at most 64 bytes of it, non-printables as '?'.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 64; i++) out += (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  return out + (s.size() > 64 ? "…\"" : "\"");
}

Status CheckString(const std::string& field, const std::string& s) {
  if (s.size() > kMaxStringBytes) return Status::Error("launch request: " + field + " is " + std::to_string(s.size()) + " bytes, over " + std::to_string(kMaxStringBytes));
  if (s.find('\0') != std::string::npos) return Status::Error("launch request: " + field + " holds a NUL byte");
  return Status();
}

bool IsEnvName(const std::string& k) {
  if (k.empty() || (k[0] >= '0' && k[0] <= '9')) return false;
  for (char c : k)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool IsLowerHex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

vc::Result<LaunchRequest> ParseLaunchRequest(const std::string& line) {
  if (line.size() > kMaxRequestBytes) return Status::Error("launch request: " + std::to_string(line.size()) + " bytes, over " + std::to_string(kMaxRequestBytes));
  json::Value v;
  std::string error;
  if (!json::parse(line, &v, &error)) return Status::Error("launch request: not valid JSON: " + error);
  if (!v.is_object()) return Status::Error("launch request: must be a JSON object");
  for (const auto& m : v.members())
    if (m.key != "argv" && m.key != "env" && m.key != "cwd" && m.key != "netns" && m.key != "nonce")
      return Status::Error("launch request: unknown field " + Quote(m.key) + " (argv, env, cwd, netns, nonce)");

  LaunchRequest r;
  const json::Value* argv = v.find("argv");
  if (!argv || !argv->is_array() || argv->items().empty()) return Status::Error("launch request: argv must be a non-empty array of strings");
  if (argv->items().size() > kMaxArgs) return Status::Error("launch request: argv has " + std::to_string(argv->items().size()) + " entries, over " + std::to_string(kMaxArgs));
  for (size_t i = 0; i < argv->items().size(); i++) {
    const json::Value& a = argv->items()[i];
    const std::string field = "argv[" + std::to_string(i) + "]";
    if (!a.is_string()) return Status::Error("launch request: " + field + " must be a string");
    Status s = CheckString(field, a.as_string());
    if (!s.ok()) return s;
    r.argv.push_back(a.as_string());
  }
  // Only what the library starts: a spare is root's VMM process, not a general exec service.
  if (r.argv[0] != "run" && r.argv[0] != "restore")
    return Status::Error("launch request: argv[0] is " + Quote(r.argv[0]) + ", but the launcher only starts \"run\" and \"restore\"");

  if (const json::Value* env = v.find("env")) {
    if (!env->is_object()) return Status::Error("launch request: env must be an object of strings");
    if (env->members().size() > kMaxEnv) return Status::Error("launch request: env has " + std::to_string(env->members().size()) + " entries, over " + std::to_string(kMaxEnv));
    for (const auto& m : env->members()) {
      if (!IsEnvName(m.key)) return Status::Error("launch request: env name " + Quote(m.key) + " is not [A-Za-z_][A-Za-z0-9_]*");
      if (!m.value.is_string()) return Status::Error("launch request: env." + m.key + " must be a string");
      Status s = CheckString("env." + m.key, m.value.as_string());
      if (!s.ok()) return s;
      r.env.emplace_back(m.key, m.value.as_string());
    }
  }

  const json::Value* cwd = v.find("cwd");
  if (!cwd || !cwd->is_string() || cwd->as_string().empty() || cwd->as_string()[0] != '/')
    return Status::Error("launch request: cwd must be an absolute path" + (cwd && cwd->is_string() ? ", not " + Quote(cwd->as_string()) : std::string()));
  Status s = CheckString("cwd", cwd->as_string());
  if (!s.ok()) return s;
  r.cwd = cwd->as_string();

  if (const json::Value* netns = v.find("netns")) {
    if (!netns->is_null()) {
      if (!netns->is_string() || netns->as_string().empty() || netns->as_string()[0] != '/')
        return Status::Error("launch request: netns must be null or an absolute path" + (netns->is_string() ? ", not " + Quote(netns->as_string()) : std::string()));
      s = CheckString("netns", netns->as_string());
      if (!s.ok()) return s;
      r.netns = netns->as_string();
    }
  }

  const json::Value* nonce = v.find("nonce");
  if (!nonce || !nonce->is_string() || nonce->as_string().size() != 32 || !IsLowerHex(nonce->as_string()))
    return Status::Error("launch request: nonce must be 32 lowercase hex digits" + (nonce && nonce->is_string() ? ", not " + Quote(nonce->as_string()) : std::string()));
  r.nonce = nonce->as_string();
  return r;
}

std::string ExitTrailer(const std::string& nonce, int code) {
  return "\n" + nonce + " exit " + std::to_string(code) + "\n";
}

}  // namespace vmm::launcher
