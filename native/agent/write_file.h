// Writing a value to an existing kernel file (/proc, sysctl, cgroup): one write(2) of the whole
// value, since such files take one value per write and a partial one is an error.
#pragma once

#include <string>

// Opens `path` for writing (no create, no truncate) and writes `value` in one call; false with
// errno set on failure (EIO for a short write).
bool write_file(const std::string& path, const std::string& value);
