#include "cgroup_stats.h"

#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "common/read_file.h"

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::optional<std::string> read_text(const std::string& path) {
  std::string text;
  if (!vc::ReadFileBounded(path.c_str(), 1u << 20, &text)) return std::nullopt;
  return text;
}

// "key value" lines (cpu.stat, memory.stat, memory.events).
Pairs keyed_lines(const std::string& text) {
  Pairs out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    size_t space = line.find(' ');
    if (space != std::string::npos) out.emplace_back(line.substr(0, space), line.substr(space + 1));
    start = end + 1;
  }
  return out;
}

// A counter as a JSON number; "max" (no limit) and anything unreadable as null. The kernel writes
// counters as bare digits; strtoull alone would also take " 12", "+7" and "-1" (as 2^64 - 1).
json::Value number(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return json::Value();
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  return json::Value::number(static_cast<double>(v));
}

json::Value single(const std::optional<std::string>& text) {
  return text ? number(*text) : json::Value();
}

json::Value keyed_object(const std::optional<std::string>& text) {
  json::Value obj = json::Value::object();
  if (!text) return obj;
  for (const auto& [k, v] : keyed_lines(*text)) {
    // Serializing turns each invalid byte into U+FFFD, so two such keys would become one key
    // twice: a reply with duplicate keys, which a strict JSON reader (the agent's own) rejects.
    if (json::valid_utf8(k)) obj.set(k, number(v));
  }
  return obj;
}

json::Value pick(const Pairs& pairs, const char* key) {
  for (const auto& [k, v] : pairs) {
    if (k == key) return number(v);
  }
  return json::Value();
}

// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device.
json::Value io_stats(const std::optional<std::string>& text) {
  json::Value list = json::Value::array();
  if (!text) return list;
  for (const auto& [dev, rest] : keyed_lines(*text + "\n")) {
    size_t colon = dev.find(':');
    if (colon == std::string::npos) continue;
    json::Value e = json::Value::object();
    e.set("major", number(dev.substr(0, colon)));
    e.set("minor", number(dev.substr(colon + 1)));
    for (const char* key : {"rbytes", "wbytes", "rios", "wios"}) {
      std::string k = std::string(key) + "=";
      size_t at = (" " + rest).find(" " + k);
      e.set(key, at == std::string::npos ? json::Value::number(0) : number(rest.substr(at + k.size())));
    }
    list.push(std::move(e));
  }
  return list;
}

}  // namespace

json::Value cgroup_stats(const std::string& path) {
  CgroupStatFiles f;
  f.cpu_stat = read_text(path + "/cpu.stat");
  f.memory_current = read_text(path + "/memory.current");
  f.memory_max = read_text(path + "/memory.max");
  f.memory_swap_current = read_text(path + "/memory.swap.current");
  f.memory_stat = read_text(path + "/memory.stat");
  f.memory_events = read_text(path + "/memory.events");
  f.pids_current = read_text(path + "/pids.current");
  f.pids_max = read_text(path + "/pids.max");
  f.io_stat = read_text(path + "/io.stat");
  return cgroup_stats_parse(f);
}

json::Value cgroup_stats_parse(const CgroupStatFiles& f) {
  Pairs cpu_stat = f.cpu_stat ? keyed_lines(*f.cpu_stat) : Pairs();
  json::Value cpu = json::Value::object();
  cpu.set("usageUsec", pick(cpu_stat, "usage_usec"));
  cpu.set("userUsec", pick(cpu_stat, "user_usec"));
  cpu.set("systemUsec", pick(cpu_stat, "system_usec"));
  cpu.set("nrPeriods", pick(cpu_stat, "nr_periods"));
  cpu.set("nrThrottled", pick(cpu_stat, "nr_throttled"));
  cpu.set("throttledUsec", pick(cpu_stat, "throttled_usec"));

  json::Value memory = json::Value::object();
  memory.set("usage", single(f.memory_current));
  memory.set("limit", single(f.memory_max));
  memory.set("swapUsage", single(f.memory_swap_current));
  memory.set("stat", keyed_object(f.memory_stat));
  memory.set("events", keyed_object(f.memory_events));

  json::Value pids = json::Value::object();
  pids.set("current", single(f.pids_current));
  pids.set("limit", single(f.pids_max));

  json::Value r = json::Value::object();
  r.set("cpu", std::move(cpu));
  r.set("memory", std::move(memory));
  r.set("pids", std::move(pids));
  r.set("io", io_stats(f.io_stat));
  return r;
}
