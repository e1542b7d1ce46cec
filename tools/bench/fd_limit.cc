#include "fd_limit.h"

#include <sys/resource.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace starling::bench {

bool ensure_fd_limit(size_t needed, std::string& error) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;  // cannot tell: let connect() say
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= needed) return true;
  if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= needed) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? needed : rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) return true;
  }
  error = "this run needs " + std::to_string(needed) + " file descriptors but the limit is " +
          std::to_string(rl.rlim_cur) + " (hard " + std::to_string(rl.rlim_max) +
          "): run `ulimit -n " + std::to_string(needed) +
          "` (or more) in the shell first; raising the hard limit needs root " +
          "(`ulimit -Hn`, or LimitNOFILE= / /etc/security/limits.conf)";
  return false;
}

size_t process_fd_limit(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream in(line.substr(14));
    std::string soft;
    in >> soft;
    if (soft == "unlimited") return SIZE_MAX;
    return static_cast<size_t>(std::strtoull(soft.c_str(), nullptr, 10));
  }
  return 0;
}

}  // namespace starling::bench
