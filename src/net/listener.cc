#include "net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace starling::net {

namespace {

std::string describe_peer(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return fmt::format("{}:{}", host, port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  // fmt, not operator+: g++ 12 at -O3 reports a false -Wrestrict on the concatenation.
  return fmt::format("[{}]:{}", host, port);
}

}  // namespace

Listener::Listener(const config::Listener& config, AcceptHandler on_accept)
    : config_(config), on_accept_(std::move(on_accept)) {
  const std::string where = config::to_string(config.bind);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(config.bind.port);
  int rc = getaddrinfo(config.bind.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    throw std::runtime_error("listener " + config.name + ": cannot resolve " + where + ": " +
                             gai_strerror(rc));
  }
  std::string error = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 4096) == 0) {
      fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(found);
  if (fd_ < 0) {
    throw std::runtime_error("listener " + config.name + ": cannot listen on " + where + ": " +
                             error);
  }
  const char* what = config.protocol == "http" ? "HTTP"
                     : config.protocol == "ws" ? (config.tls() ? "MQTT over WebSocket+TLS (wss)"
                                                               : "MQTT over WebSocket (ws)")
                     : config.tls()            ? "MQTT over TLS"
                                               : "MQTT";
  spdlog::info("listening for {} on {} ({}{})", what, where, config.name,
               config.proxy_protocol ? ", PROXY protocol" : "");
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

void Listener::attach(core::EventLoop& loop) {
  loop.add(fd_, EPOLLIN, this);
}

void Listener::on_io(uint32_t) {
  for (int i = 0; i < 256; ++i) {  // bounded: other sockets on this loop get their turn
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::warn("accept on {}: {} (raise the file descriptor limit)",
                     config::to_string(config_.bind), std::strerror(errno));
        return;
      }
      spdlog::warn("accept on {}: {}", config::to_string(config_.bind), std::strerror(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    on_accept_(fd, describe_peer(addr));
  }
}

}  // namespace starling::net
