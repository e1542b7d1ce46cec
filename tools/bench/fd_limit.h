// File descriptor limits: every bench connection is a descriptor in this process and one in the
// broker, and the usual soft limit (1024) is far below a connection storm. The bench raises its
// own soft limit up to the hard limit by itself; past that it says what to do rather than
// failing half way through connecting.
#pragma once

#include <cstddef>
#include <string>

namespace starling::bench {

// Makes sure this process may open `needed` descriptors, raising the soft limit if it must.
// False with a message saying how to fix it otherwise.
bool ensure_fd_limit(size_t needed, std::string& error);

// The soft "Max open files" of another process (from /proc/PID/limits); 0 if unknown, SIZE_MAX
// when unlimited.
size_t process_fd_limit(int pid);

}  // namespace starling::bench
