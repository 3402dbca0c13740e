#include "serial_ports.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "agent.h"
#include "common/read_file.h"
#include "log.h"

bool is_agent_port_name(const std::string& name) {
  return name == "agent" || (name.size() > 6 && name.compare(0, 6, "agent.") == 0);
}

static bool read_small_file(const std::string& path, std::string* out) {
  return vc::ReadFileBounded(path.c_str(), 4096, out);  // a sysfs attribute: at most a page
}

// Opens every agent port of /sys/class/virtio-ports not opened yet. An entry is remembered once
// it is opened or known not to be ours, so a scan costs one directory read when nothing is new.
static void serial_scan(Agent& a) {
  const char* kClass = "/sys/class/virtio-ports";
  DIR* d = opendir(kClass);
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || a.serial.seen.count(e->d_name)) continue;
    std::string name;
    // The name attribute may be empty until the host's PORT_NAME message arrives: look again.
    if (!read_small_file(std::string(kClass) + "/" + e->d_name + "/name", &name)) continue;
    while (!name.empty() && (name.back() == '\n' || name.back() == '\0')) name.pop_back();
    if (name.empty()) continue;
    if (!is_agent_port_name(name)) {
      a.serial.seen.insert(e->d_name);
      continue;
    }
    std::string dev = std::string("/dev/") + e->d_name;
    int fd = open(dev.c_str(), O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) continue;  // devtmpfs has not created the node yet: next scan
    a.serial.seen.insert(e->d_name);
    a.serial.ports.push_back(SerialPort{fd, 0, dev, name});
    logf("using virtio-serial port %s (%s)", name.c_str(), dev.c_str());
  }
  closedir(d);
}

// A port reports POLLHUP exactly while its host side is closed (and then poll never blocks, which
// is why such a port stays out of the main poll set until a host is there). One poll for all.
static void serial_accept_hosts(Agent& a) {
  std::vector<pollfd> fds;
  std::vector<size_t> index;
  for (size_t i = 0; i < a.serial.ports.size(); i++) {
    const SerialPort& s = a.serial.ports[i];
    if (s.fd < 0 || s.conn != 0) continue;
    fds.push_back(pollfd{s.fd, POLLIN, 0});
    index.push_back(i);
  }
  if (fds.empty() || poll(fds.data(), fds.size(), 0) < 0) return;
  for (size_t k = 0; k < fds.size(); k++) {
    if (!(fds[k].revents & POLLHUP)) serial_conn_add(a, index[k]);
  }
}

static void log_ready_once(Agent& a) {
  if (a.ready_logged) return;
  a.ready_logged = true;
  logf("ready");
}

void serial_update(Agent& a) {
  SerialPorts& s = a.serial;
  if (s.scanning) {
    int64_t now = monotonic_ms();
    if (now >= s.next_scan_ms) {
      serial_scan(a);
      if (!s.ports.empty()) log_ready_once(a);
      if (now >= s.scan_deadline_ms && s.ports.empty()) {
        if (a.socket_channel_up) {
          s.scanning = false;  // vsock serves; no serial port in this VM
        } else if (s.next_scan_ms <= s.scan_deadline_ms) {
          logf("no virtio-serial port named agent or agent.N after 10 s and no vsock; still looking");
        }
      }
      // Fast while ports are expected (the driver just loaded), then slowly for the rest of the
      // VM's life: a scan that finds nothing new is one directory read.
      s.next_scan_ms = now + (now < s.scan_deadline_ms ? 20 : 1000);
    }
  }
  if (a.socket_channel_up) log_ready_once(a);
  serial_accept_hosts(a);
}

int serial_poll_timeout(const Agent& a) {
  const SerialPorts& s = a.serial;
  int timeout = -1;
  for (const SerialPort& p : s.ports) {
    if (p.fd >= 0 && p.conn == 0) timeout = 20;  // a host absent: check for it every 20 ms
  }
  if (s.scanning) {
    int64_t left = s.next_scan_ms - monotonic_ms();
    int scan = left < 0 ? 0 : static_cast<int>(left);
    if (timeout < 0 || scan < timeout) timeout = scan;
  }
  return timeout;
}
