// The launcher's request parser (cmd/launch_request.h): what a client may ask a pre-forked spare.
#include <string>

#include "cmd/launch_request.h"
#include "tests/check.h"

namespace {

using vmm::launcher::ParseLaunchRequest;

const char* kNonce = "0123456789abcdef0123456789abcdef";

std::string Request(const std::string& fields) {
  return "{\"argv\":[\"run\",\"--config\",\"/p/vmm.json\"],\"cwd\":\"/\",\"nonce\":\"" + std::string(kNonce) + "\"" + fields + "}";
}

// The error of `line`, or "" when it parses.
std::string ErrorOf(const std::string& line) {
  auto r = ParseLaunchRequest(line);
  return r.ok() ? "" : r.error();
}

}  // namespace

VMM_TEST(cmd_launch_request_a_full_request_parses) {
  auto r = ParseLaunchRequest(Request(",\"env\":{\"PATH\":\"/bin\",\"VC_X\":\"\"},\"netns\":\"/run/netns/p1\""));
  CHECK(r.ok());
  if (!r.ok()) return;
  CHECK(r->argv.size() == 3 && r->argv[0] == "run" && r->argv[2] == "/p/vmm.json");
  CHECK(r->env.size() == 2 && r->env[0].first == "PATH" && r->env[0].second == "/bin" && r->env[1].second.empty());
  CHECK(r->cwd == "/" && r->netns == "/run/netns/p1" && r->nonce == kNonce);
  auto plain = ParseLaunchRequest(Request(",\"netns\":null"));
  CHECK(plain.ok() && plain->netns.empty() && plain->env.empty());
  CHECK(vmm::launcher::ExitTrailer(kNonce, 3) == std::string("\n") + kNonce + " exit 3\n");
}

VMM_TEST(cmd_launch_request_each_bad_field_is_named) {
  struct Case {
    std::string line, expect;
  } cases[] = {
      {"", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {Request(",\"extra\":1"), "unknown field \"extra\""},
      {"{\"cwd\":\"/\",\"nonce\":\"" + std::string(kNonce) + "\"}", "argv must be a non-empty array"},
      {"{\"argv\":[],\"cwd\":\"/\"}", "argv must be a non-empty array"},
      {"{\"argv\":[\"run\",7],\"cwd\":\"/\"}", "argv[1] must be a string"},
      {"{\"argv\":[\"caps\"],\"cwd\":\"/\",\"nonce\":\"" + std::string(kNonce) + "\"}", "argv[0] is \"caps\", but the launcher only starts \"run\" and \"restore\""},
      {"{\"argv\":[\"run\\u0000\"],\"cwd\":\"/\"}", "argv[0] holds a NUL byte"},
      {"{\"argv\":[\"run\",\"" + std::string(5000, 'a') + "\"],\"cwd\":\"/\"}", "argv[1] is 5000 bytes, over 4096"},
      {Request(",\"env\":[]"), "env must be an object of strings"},
      {Request(",\"env\":{\"1A\":\"x\"}"), "env name \"1A\" is not"},
      {Request(",\"env\":{\"A=B\":\"x\"}"), "env name \"A=B\" is not"},
      {Request(",\"env\":{\"A\":1}"), "env.A must be a string"},
      {Request(",\"netns\":\"relative\""), "netns must be null or an absolute path, not \"relative\""},
      {Request(",\"netns\":5"), "netns must be null or an absolute path"},
      {"{\"argv\":[\"run\"],\"cwd\":\"tmp\",\"nonce\":\"" + std::string(kNonce) + "\"}", "cwd must be an absolute path, not \"tmp\""},
      {"{\"argv\":[\"run\"],\"nonce\":\"" + std::string(kNonce) + "\"}", "cwd must be an absolute path"},
      {"{\"argv\":[\"run\"],\"cwd\":\"/\",\"nonce\":\"ABCDEF0123456789abcdef0123456789\"}", "nonce must be 32 lowercase hex digits, not \"ABCDEF"},
      {"{\"argv\":[\"run\"],\"cwd\":\"/\",\"nonce\":\"abc\"}", "nonce must be 32 lowercase hex digits"},
      {"{\"argv\":[\"run\"],\"cwd\":\"/\"}", "nonce must be 32 lowercase hex digits"},
  };
  for (const Case& c : cases) {
    const std::string e = ErrorOf(c.line);
    CHECK(e.find(c.expect) != std::string::npos);
    if (e.find(c.expect) == std::string::npos) std::printf("#   %s\n#   gave: %s\n", c.line.substr(0, 120).c_str(), e.c_str());
    CHECK(e.rfind("launch request: ", 0) == 0);
  }
  std::string many = "{\"argv\":[\"run\"";
  for (int i = 0; i < 300; i++) many += ",\"x\"";
  CHECK(ErrorOf(many + "],\"cwd\":\"/\"}").find("argv has 301 entries, over 256") != std::string::npos);
  CHECK(ErrorOf(std::string(2 << 20, ' ')).find("over 1048576") != std::string::npos);
}
