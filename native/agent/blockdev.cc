#include "blockdev.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/read_file.h"

static bool read_small(const std::string& path, std::string* out) {
  return vc::ReadFileBounded(path.c_str(), 4096, out);  // a sysfs attribute: at most a page
}

// Serials are padded with spaces (SCSI) or NULs, and sysfs text ends with a newline.
static std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0' || s.back() == '\n')) s.pop_back();
  size_t first = s.find_first_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first);
}

static std::string disk_serial(const std::string& name) {
  std::string raw;
  if (name.compare(0, 2, "sd") == 0) {
    // VPD page 0x80: byte 1 = page code, bytes 2-3 = page length, then the serial.
    if (!read_small("/sys/block/" + name + "/device/vpd_pg80", &raw) || raw.size() < 4) return "";
    size_t len = (static_cast<unsigned char>(raw[2]) << 8) | static_cast<unsigned char>(raw[3]);
    return trim(raw.substr(4, len));
  }
  if (name.compare(0, 2, "vd") == 0 && read_small("/sys/block/" + name + "/serial", &raw)) {
    return trim(raw);
  }
  return "";
}

// The device node must be the disk itself: devtmpfs creates it a moment after the sysfs entry,
// and a stale node of an unplugged disk must not match.
static bool node_matches(const std::string& name, const std::string& node) {
  std::string dev;
  unsigned maj = 0, min = 0;
  if (!read_small("/sys/block/" + name + "/dev", &dev) ||
      std::sscanf(dev.c_str(), "%u:%u", &maj, &min) != 2) {
    return false;
  }
  struct stat st;
  return stat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && major(st.st_rdev) == maj &&
         minor(st.st_rdev) == min;
}

// The kernel creates the sysfs entry and the node (device_add) before it makes the disk itself
// reachable (bdev_add, after the request queue is registered): in between, opening the node, and
// so mounting it, fails with ENXIO. A slow (emulated) guest makes that window easy to hit.
static bool can_open(const std::string& node) {
  int fd = open(node.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

std::string blockdev_find_by_serial(const std::string& serial) {
  DIR* d = opendir("/sys/block");
  if (!d) return "";
  std::string found;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name[0] == '.' || disk_serial(name) != serial) continue;
    std::string node = "/dev/" + name;
    if (node_matches(name, node) && can_open(node)) found = node;
    break;
  }
  closedir(d);
  return found;
}
