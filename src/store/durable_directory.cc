#include "store/durable_directory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace starling::store {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open the directory " + dir.string());
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    fail("cannot sync the directory " + dir.string());
  }
  ::close(fd);
}

void create_directories_durably(const std::filesystem::path& dir) {
  const std::filesystem::path target = std::filesystem::absolute(dir).lexically_normal();
  // The missing ones, outermost first.
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path p = target; !std::filesystem::exists(p); p = p.parent_path()) {
    missing.insert(missing.begin(), p);
    if (p == p.parent_path()) break;
  }
  for (const std::filesystem::path& p : missing) {
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) fail("cannot create " + p.string());
    sync_directory(p);
    sync_directory(p.parent_path());
  }
  if (missing.empty()) {
    sync_directory(target);
    sync_directory(target.parent_path());
  }
}

}  // namespace starling::store
