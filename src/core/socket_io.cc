#include "core/socket_io.h"

#include <sys/socket.h>

#include <cerrno>

namespace starling::core {

SendResult send_pending(int fd, const std::string& buf, size_t& pos) {
  while (pos < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + pos, buf.size() - pos, MSG_NOSIGNAL);
    if (n > 0) {
      pos += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return SendResult::WouldBlock;
    return SendResult::Failed;
  }
  return SendResult::Done;
}

}  // namespace starling::core
