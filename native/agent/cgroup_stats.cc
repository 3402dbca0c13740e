#include "cgroup_stats.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "common/read_file.h"

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

bool read_text(const std::string& path, std::string* out) {
  return vc::ReadFileBounded(path.c_str(), 1u << 20, out);
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

// A counter as a JSON number; "max" (no limit) and anything unreadable as null.
json::Value number(const std::string& text) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str()) return json::Value();
  return json::Value::number(static_cast<double>(v));
}

json::Value single(const std::string& path) {
  std::string text;
  return read_text(path, &text) ? number(text) : json::Value();
}

json::Value keyed_object(const std::string& path) {
  json::Value obj = json::Value::object();
  std::string text;
  if (!read_text(path, &text)) return obj;
  for (const auto& [k, v] : keyed_lines(text)) obj.set(k, number(v));
  return obj;
}

json::Value pick(const Pairs& pairs, const char* key) {
  for (const auto& [k, v] : pairs) {
    if (k == key) return number(v);
  }
  return json::Value();
}

// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device.
json::Value io_stats(const std::string& path) {
  json::Value list = json::Value::array();
  std::string text;
  if (!read_text(path, &text)) return list;
  for (const auto& [dev, rest] : keyed_lines(text + "\n")) {
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
  std::string text;
  Pairs cpu_stat = read_text(path + "/cpu.stat", &text) ? keyed_lines(text) : Pairs();
  json::Value cpu = json::Value::object();
  cpu.set("usageUsec", pick(cpu_stat, "usage_usec"));
  cpu.set("userUsec", pick(cpu_stat, "user_usec"));
  cpu.set("systemUsec", pick(cpu_stat, "system_usec"));
  cpu.set("nrPeriods", pick(cpu_stat, "nr_periods"));
  cpu.set("nrThrottled", pick(cpu_stat, "nr_throttled"));
  cpu.set("throttledUsec", pick(cpu_stat, "throttled_usec"));

  json::Value memory = json::Value::object();
  memory.set("usage", single(path + "/memory.current"));
  memory.set("limit", single(path + "/memory.max"));
  memory.set("swapUsage", single(path + "/memory.swap.current"));
  memory.set("stat", keyed_object(path + "/memory.stat"));
  memory.set("events", keyed_object(path + "/memory.events"));

  json::Value pids = json::Value::object();
  pids.set("current", single(path + "/pids.current"));
  pids.set("limit", single(path + "/pids.max"));

  json::Value r = json::Value::object();
  r.set("cpu", std::move(cpu));
  r.set("memory", std::move(memory));
  r.set("pids", std::move(pids));
  r.set("io", io_stats(path + "/io.stat"));
  return r;
}
