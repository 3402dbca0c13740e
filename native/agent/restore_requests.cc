#include "restore_requests.h"

#include <cstdio>

#include "args.h"
#include "base64.h"
#include "network.h"

// Seconds since the epoch up to the year 9999: far enough for any real clock, small enough that
// tv_sec arithmetic cannot overflow.
static constexpr double kMaxSeconds = 253402300799.0;

static bool time_arg(Args& args, timespec* out) {
  const json::Value* t = nullptr;
  if (!args.object("time", &t, true)) return false;
  Args nested(*t, args.name("time."));
  int64_t sec = 0, nsec = 0;
  if (!nested.integer("sec", true, 1, kMaxSeconds, &sec) ||
      !nested.integer("nsec", true, 0, 999999999, &nsec)) {
    return args.take(nested);
  }
  out->tv_sec = static_cast<time_t>(sec);
  out->tv_nsec = static_cast<long>(nsec);
  return true;
}

static bool machine_id_ok(const std::string& s) {
  if (s.size() != 32) return false;
  bool nonzero = false;
  for (char ch : s) {
    bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    if (!hex) return false;
    nonzero = nonzero || ch != '0';
  }
  return nonzero;
}

// "aa:bb:cc:dd:ee:ff", any case; lower-cased into *out.
static bool mac_field(Args& x, const char* n, std::string* out) {
  if (!x.string(n, out, true)) return false;
  bool ok = out->size() == 17;
  for (size_t i = 0; ok && i < 17; i++) {
    char& ch = (*out)[i];
    if (i % 3 == 2) {
      ok = ch == ':';
    } else {
      if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
      ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    }
  }
  if (!ok) return x.fail(n, Args::got(json::Value::string(*out)) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
  return true;
}

static bool macs_arg(Args& args, std::vector<RestoredRequest::MacChange>* out) {
  const json::Value* v = args.get("macs");
  if (!v) return true;
  if (!v->is_array()) return args.fail("macs", "expected an array, got " + Args::got(*v));
  if (v->items().size() > kRestoreMaxMacs) {
    return args.fail("macs", std::to_string(v->items().size()) + " entries, more than " + std::to_string(kRestoreMaxMacs));
  }
  for (size_t i = 0; i < v->items().size(); i++) {
    const json::Value& item = v->items()[i];
    std::string at = "macs[" + std::to_string(i) + "]";
    if (!item.is_object()) return args.fail(at.c_str(), "expected an object, got " + Args::got(item));
    Args x(item, args.name((at + ".").c_str()));
    RestoredRequest::MacChange m;
    if (!mac_field(x, "from", &m.from) || !mac_field(x, "to", &m.to)) return args.take(x);
    for (const auto& other : *out) {
      if (other.from == m.from) {
        x.fail("from", "\"" + m.from + "\" is listed twice");
        return args.take(x);
      }
    }
    out->push_back(m);
  }
  return true;
}

bool restored_args(Args& args, RestoredRequest* out) {
  int64_t epoch = 0;
  if (!args.integer("epoch", true, 1, 4294967295.0, &epoch)) return false;
  out->epoch = static_cast<uint32_t>(epoch);
  if (!time_arg(args, &out->time)) return false;
  if (!args.string("hostname", &out->hostname, true)) return false;
  if (!valid_hostname(out->hostname)) {
    return args.fail("hostname", Args::got(json::Value::string(out->hostname)) +
                                     " is not a host name (1 to 64 letters, digits, '-' and '.', starting with a letter or digit)");
  }
  if (!args.string("machineId", &out->machine_id, true)) return false;
  if (!machine_id_ok(out->machine_id)) {
    return args.fail("machineId", Args::got(json::Value::string(out->machine_id)) +
                                      " is not 32 lowercase hex digits, not all zero");
  }
  std::string seed64;
  if (!args.string("seed", &seed64, true)) return false;
  if (!base64_decode(seed64, &out->seed)) return args.fail("seed", "not canonical padded base64");
  if (out->seed.size() != kRestoreSeedBytes) {
    return args.fail("seed", std::to_string(out->seed.size()) + " bytes, not " +
                                 std::to_string(kRestoreSeedBytes));
  }
  return macs_arg(args, &out->macs);
}

bool restore_clock_jumped(const timespec& host, const timespec& guest, std::string* why) {
  bool later = host.tv_sec > guest.tv_sec || (host.tv_sec == guest.tv_sec && host.tv_nsec > guest.tv_nsec);
  if (later) return true;
  char buf[160];
  snprintf(buf, sizeof buf, "time: %lld.%09ld is not later than the guest's clock (%lld.%09ld)",
           static_cast<long long>(host.tv_sec), host.tv_nsec, static_cast<long long>(guest.tv_sec), guest.tv_nsec);
  *why = std::string(buf) + ": no clock jump, so this is not a restored snapshot";
  return false;
}
