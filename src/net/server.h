// The network side of the broker: worker threads, listeners, and the ConnectionControl the
// broker uses to reach connections on other workers.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "broker/broker.h"
#include "broker/connection_control.h"
#include "config/config.h"
#include "core/event_loop.h"
#include "net/admission.h"
#include "net/listener_context.h"
#include "net/worker.h"

namespace starling::http {
class Server;
struct Request;
struct WebSocketTakeover;
}  // namespace starling::http

namespace starling::net {

class Listener;

class Server final : public broker::ConnectionControl {
 public:
  Server(const config::Config& config, broker::Broker& broker);
  ~Server() override;

  // Loads every TLS listener's certificate, key and CA files as start() will, so --check-config
  // and the start fail on unusable ones. Throws config::ConfigError (the listener's line).
  static void check_tls(const config::Config& config);

  // Binds every listener (throws std::runtime_error with the address and reason) and starts
  // the worker threads.
  void start();
  // Clients get DISCONNECT 0x8B (5.0), output is flushed, threads end. Idempotent.
  void stop();

  // broker::ConnectionControl
  void kick(broker::Attachment connection, uint8_t reason_code) override;
  void resume_reading(broker::Attachment connection) override;
  void post_to_client(broker::Attachment connection,
                      std::function<void(broker::Client&)> task) override;
  void cluster_wait_over(broker::Attachment connection) override;

  // Hands an accepted socket to the next worker, round robin, or refuses it over a limit.
  void dispatch(int fd, std::string peer, const std::shared_ptr<ListenerContext>& listener);
  // SIGHUP: reads the TLS listeners' certificates and keys again, for new connections. A
  // listener whose files fail keeps its current ones (logged).
  void reload_certificates();
  // For the service manager's watchdog (main thread only): true when every worker loop ran the
  // probe the previous call posted to it, that is, no loop is stuck; then posts the next
  // probe. The first call is true.
  bool loops_responsive();
  size_t worker_count() const { return workers_.size(); }
  Worker& worker(size_t index) { return *workers_[index]; }
  // A token for something new on a loop (connections and bridges share the numbering).
  uint64_t new_token() { return next_token_.fetch_add(1, std::memory_order_relaxed); }

 private:
  Worker& worker_of(const broker::Attachment& a) { return *workers_[a.loop->index()]; }

  // A WebSocket upgrade request on the HTTP port (on the HTTP connection's loop thread):
  // takes the socket over as an MQTT connection on the same loop, or gives the HTTP
  // connection the error to answer.
  http::WebSocketTakeover take_websocket(int fd, const std::string& peer,
                                         const http::Request& request, unsigned loop_index);

  const config::Config config_;
  broker::Broker& broker_;
  Admission admission_;  // before the workers: their connections release into it
  std::vector<std::shared_ptr<ListenerContext>> contexts_;
  std::shared_ptr<ListenerContext> http_ws_context_;  // WebSocket on the HTTP port
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<http::Server> http_;  // the HTTP API on the same workers; null when off
  std::atomic<uint64_t> next_token_{1};
  // The watchdog probe each worker loop last ran, and the last one posted.
  std::vector<std::atomic<uint64_t>> probes_answered_;
  uint64_t probes_posted_ = 0;
  std::atomic<uint32_t> next_worker_{0};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace starling::net
