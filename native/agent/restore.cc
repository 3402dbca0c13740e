#include "restore.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent.h"
#include "args.h"
#include "log.h"
#include "netlink.h"
#include "restore_requests.h"

void restore_conn_reset(Agent& a, const char* kind) {
  // Only a socket the guest's vsock driver resets: a Unix socket's ECONNRESET is a host that went
  // away with unread data, which says nothing about a snapshot (unless a test says so).
  bool vsock = std::strcmp(kind, "vsock") == 0;
  bool test_unix = a.restore.test && std::strcmp(kind, "unix") == 0;
  if (!vsock && !test_unix) return;
  if (!a.restore.pending) logf("%s connection reset: restored from a snapshot; waiting for `restored`", kind);
  a.restore.pending = true;
}

bool restore_refuses(const Agent& a, const std::string& op, Reply* refusal) {
  if (!a.restore.pending || op == "hello" || op == "restored") return false;
  *refusal = Reply::error("RESTORE_PENDING",
                          "this VM was restored from a snapshot (its host connection was reset) and "
                          "still has the snapshot's identity: send `restored` before " + op);
  return true;
}

// --- re-seeding ---------------------------------------------------------------------------------

// Up to `want` bytes of virtio-rng through /dev/hwrng, waiting at most ~50 ms (the device answers
// in microseconds; a missing or stuck one must not hold up the restore). Empty without a device.
static std::string read_hwrng(size_t want) {
  std::string out;
  int fd = open("/dev/hwrng", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[64];
  for (int tries = 0; tries < 50 && out.size() < want; tries++) {
    ssize_t n = read(fd, buf, std::min(sizeof buf, want - out.size()));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      usleep(1000);
    } else {
      break;
    }
  }
  close(fd);
  return out;
}

// Mixes `bytes` into the kernel's pool. As PID 1, RNDADDENTROPY credits them as entropy (8 bits a
// byte: they come from the host's getrandom and virtio-rng); a plain write only mixes them in.
static bool add_randomness(const std::string& bytes, bool credit, std::string* why) {
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = std::string("open /dev/urandom: ") + strerror(errno);
    return false;
  }
  bool ok;
  if (credit) {
    std::vector<char> buf(sizeof(rand_pool_info) + bytes.size());
    auto* info = reinterpret_cast<rand_pool_info*>(buf.data());
    info->entropy_count = static_cast<int>(bytes.size() * 8);
    info->buf_size = static_cast<int>(bytes.size());
    std::memcpy(info->buf, bytes.data(), bytes.size());
    ok = ioctl(fd, RNDADDENTROPY, info) == 0;
    if (!ok) *why = std::string("RNDADDENTROPY: ") + strerror(errno);
  } else {
    ok = write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    if (!ok) *why = std::string("write /dev/urandom: ") + strerror(errno);
  }
  close(fd);
  return ok;
}

// Written whole or not at all: a new file renamed over the old one.
static bool write_machine_id(const std::string& path, const std::string& id, std::string* why) {
  std::string tmp = path + ".new";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
  std::string text = id + "\n";
  bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int saved = errno;
  if (fd >= 0) close(fd);
  if (ok && rename(tmp.c_str(), path.c_str()) == 0) return true;
  if (ok) saved = errno;
  unlink(tmp.c_str());
  *why = path + ": " + strerror(saved);
  return false;
}

static bool mac_bytes(const std::string& text, unsigned char out[6]) {
  unsigned v[6];
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; i++) out[i] = static_cast<unsigned char>(v[i]);
  return true;
}

// The snapshot's MACs are what the guest kernel still has; the restored pod's NICs have new ones.
static bool change_macs(const std::vector<RestoredRequest::MacChange>& macs, std::string* why) {
  if (macs.empty()) return true;
  Netlink nl;
  std::vector<NlLink> links;
  int err = nl.open();
  if (err == 0) err = nl.list_links(&links);
  if (err != 0) {
    *why = std::string("netlink: ") + strerror(-err);
    return false;
  }
  for (size_t i = 0; i < macs.size(); i++) {
    const NlLink* link = nullptr;
    for (const NlLink& l : links) {
      if (l.mac == macs[i].from) link = &l;
    }
    unsigned char mac[6];
    if (!link || !mac_bytes(macs[i].to, mac)) {
      *why = "macs[" + std::to_string(i) + "].from: no interface has MAC " + macs[i].from;
      return false;
    }
    err = nl.set_link_mac(link->index, mac);
    if (err != 0) {
      *why = "macs[" + std::to_string(i) + "]: setting " + link->name + "'s MAC to " + macs[i].to + ": " + strerror(-err);
      return false;
    }
  }
  return true;
}

// Each step in the order docs/snapshots.md gives; the first failure stops the rest and the agent
// stays restore-pending (better a pod that answers nothing than one with the template's identity).
static Reply apply(Agent& a, const RestoredRequest& r) {
  RestoreState& s = a.restore;
  std::string why;
  std::string random = r.seed;
  std::string hw = s.test ? std::string() : read_hwrng(kRestoreSeedBytes);
  random += hw;
  if (!add_randomness(random, !s.test, &why)) return Reply::error("INTERNAL", "restored: " + why);
  bool clock_set = false;
  if (!s.test) {
    if (clock_settime(CLOCK_REALTIME, &r.time) != 0) {
      return Reply::error("INTERNAL", std::string("restored: clock_settime: ") + strerror(errno));
    }
    clock_set = true;
  }
  if (sethostname(r.hostname.data(), r.hostname.size()) != 0) {
    return Reply::error("INTERNAL", std::string("restored: sethostname: ") + strerror(errno));
  }
  if (!write_machine_id(s.machine_id_path, r.machine_id, &why)) return Reply::error("INTERNAL", "restored: machineId: " + why);
  if (!change_macs(r.macs, &why)) return Reply::error("INTERNAL", "restored: " + why);
  s.epoch = r.epoch;
  s.pending = false;
  logf("restored: epoch %u, hostname %s, %zu hwrng bytes", r.epoch, r.hostname.c_str(), hw.size());
  json::Value out = json::Value::object();
  out.set("epoch", json::Value::number(r.epoch));
  out.set("hwrngBytes", json::Value::number(static_cast<double>(hw.size())));
  out.set("clockSet", json::Value::boolean(clock_set));
  return Reply::ok(std::move(out));
}

static Reply op_restored(Agent& a, Connection&, uint32_t, const json::Value& req) {
  if (!a.restore.pending) {
    return Reply::error("NOT_RESTORED", "restored: no snapshot restore was seen (no host connection was reset since " +
                                            std::string(a.restore.epoch ? "the last restored" : "boot") + ")");
  }
  Args args(req);
  RestoredRequest r;
  if (!restored_args(args, &r)) return Reply::error("BAD_REQUEST", args.error());
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  std::string why;
  if (!restore_clock_jumped(r.time, now, &why)) return Reply::error("BAD_REQUEST", why);
  return apply(a, r);
}

const std::vector<Op> kRestoreOps = {
    {"restored", op_restored},
};
