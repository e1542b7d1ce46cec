// The HTTP server: accepted sockets are spread over the broker's worker loops, where each one
// becomes an http::Connection that lives on that loop for its whole life, like MQTT
// connections. The server keeps, per loop, the connections there and a copy of the settings in
// force (refreshed on the loop's timer, so a SIGHUP reload of limits and tokens needs no lock
// per request).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/broker.h"
#include "config/config.h"
#include "core/event_loop.h"

namespace starling::http {

class Api;
class Connection;
class Server;
struct Request;

// What became of a WebSocket upgrade request on the HTTP port.
struct WebSocketTakeover {
  bool taken = false;   // the socket is an MQTT connection now: forget it
  std::string refusal;  // not taken: the whole HTTP response to answer, then close
};
// Called on the HTTP connection's loop (loop_index) with its socket and the upgrade request.
using WebSocketHandler = std::function<WebSocketTakeover(
    int fd, const std::string& peer, const Request& request, unsigned loop_index)>;

// The HTTP side of one worker loop. Loop thread only, except where noted.
struct LoopSite {
  Server* server = nullptr;
  core::EventLoop* loop = nullptr;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections;
  std::shared_ptr<const config::Config> settings;

  Connection* find(uint64_t token);
  // Destroys the connection at the end of this loop iteration (it may be on the stack now).
  void remove(uint64_t token);
};

class Server {
 public:
  // loops: the workers' loops, not running yet (timers are added to them here).
  Server(broker::Broker& broker, const std::vector<core::EventLoop*>& loops);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Any thread (the listener's loop): adopts an accepted socket on the next loop, or refuses
  // it with 503 over [http] max_connections.
  void dispatch(int fd, std::string peer);

  // Closes every HTTP connection on the loop with this index (its own thread; shutdown).
  void close_all(unsigned loop_index);

  // Readiness (/readyz): set once every listener is bound and the workers run.
  void set_listeners_up(bool up) { listeners_up_.store(up, std::memory_order_release); }
  bool listeners_up() const { return listeners_up_.load(std::memory_order_acquire); }

  // MQTT over WebSocket on this port: set before the loops run.
  void set_websocket_handler(WebSocketHandler handler) { websocket_ = std::move(handler); }
  const WebSocketHandler& websocket_handler() const { return websocket_; }

  broker::Broker& broker() { return broker_; }
  Api& api() { return *api_; }
  size_t connection_count() const { return connections_.load(std::memory_order_relaxed); }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  void adopt(LoopSite& site, int fd, uint64_t token, std::string peer);
  void tick(LoopSite& site);

  broker::Broker& broker_;
  std::unique_ptr<Api> api_;
  std::vector<std::unique_ptr<LoopSite>> sites_;
  std::atomic<uint64_t> next_token_{1};
  std::atomic<uint32_t> next_site_{0};
  std::atomic<size_t> connections_{0};
  std::atomic<bool> listeners_up_{false};
  WebSocketHandler websocket_;
};

// True for 127.0.0.0/8, ::1 and ::ffff:127.x peers ("127.0.0.1:5555", "[::1]:5555").
bool is_loopback_peer(const std::string& peer);

}  // namespace starling::http
