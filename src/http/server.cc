#include "http/server.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "http/api.h"
#include "http/connection.h"
#include "http/response.h"
#include "metrics/counters.h"

namespace starling::http {

namespace {
// Timeouts are checked this often; the smallest configurable timeout is 100 ms.
constexpr auto kTickInterval = std::chrono::milliseconds(100);
}  // namespace

Connection* LoopSite::find(uint64_t token) {
  auto it = connections.find(token);
  return it == connections.end() ? nullptr : it->second.get();
}

void LoopSite::remove(uint64_t token) {
  loop->defer([this, token] { connections.erase(token); });
}

bool is_loopback_peer(const std::string& peer) {
  std::string host = peer;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else {
    host = host.substr(0, host.rfind(':'));
  }
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

Server::Server(broker::Broker& broker, const std::vector<core::EventLoop*>& loops)
    : broker_(broker), api_(std::make_unique<Api>(*this)) {
  for (core::EventLoop* loop : loops) {
    auto site = std::make_unique<LoopSite>();
    site->server = this;
    site->loop = loop;
    site->settings = broker.settings();
    LoopSite* raw = site.get();
    loop->every(kTickInterval, [this, raw] { tick(*raw); });
    sites_.push_back(std::move(site));
  }
}

Server::~Server() = default;

void Server::tick(LoopSite& site) {
  site.settings = broker_.settings();  // picks up a reload within a tick
  auto now = core::EventLoop::now();
  std::vector<Connection*> all;
  all.reserve(site.connections.size());
  for (auto& [token, conn] : site.connections)
    all.push_back(conn.get());
  for (Connection* c : all)
    c->tick(now);
}

void Server::dispatch(int fd, std::string peer) {
  const uint32_t max = broker_.settings()->http.max_connections;
  if (max != 0 && connections_.load(std::memory_order_relaxed) >= max) {
    // Over the limit: a short 503 (best effort: the socket buffer of a new connection has
    // room for it) and close.
    metrics::add(metrics::Counter::HttpConnectionsRefused);
    std::string bytes;
    Response r = json_error(503, "too_many_connections", "the HTTP connection limit is reached");
    serialize(r, false, false, 1, bytes);
    [[maybe_unused]] auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::close(fd);
    return;
  }
  connections_.fetch_add(1, std::memory_order_relaxed);
  uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  LoopSite& site = *sites_[next_site_.fetch_add(1, std::memory_order_relaxed) % sites_.size()];
  if (site.loop->in_loop_thread()) {
    adopt(site, fd, token, std::move(peer));
  } else {
    site.loop->post([this, &site, fd, token, peer = std::move(peer)]() mutable {
      adopt(site, fd, token, std::move(peer));
    });
  }
}

void Server::adopt(LoopSite& site, int fd, uint64_t token, std::string peer) {
  auto conn = std::make_unique<Connection>(site, fd, token, std::move(peer));
  Connection* raw = conn.get();
  site.connections.emplace(token, std::move(conn));
  raw->start();
  metrics::add(metrics::Counter::HttpConnectionsAccepted);
}

void Server::close_all(unsigned loop_index) {
  for (auto& site : sites_) {
    if (site->loop->index() != loop_index) continue;
    std::vector<Connection*> all;
    for (auto& [token, conn] : site->connections)
      all.push_back(conn.get());
    for (Connection* c : all)
      c->destroy();
  }
}

}  // namespace starling::http
