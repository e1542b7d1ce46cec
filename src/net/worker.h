// A worker: one thread, one epoll loop, and the connections that live on it.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_map>

#include "broker/broker.h"
#include "broker/client.h"
#include "core/event_loop.h"
#include "net/admission.h"
#include "net/connection_table.h"
#include "net/layers.h"
#include "net/listener_context.h"

namespace starling::net {

class Connection;

// Something other than an accepted connection that lives on a worker's loop with a
// broker::Client of its own (a bridge to another broker, src/bridge): woken for its session's
// output, kicked and resumed through ConnectionControl like a connection.
class LoopEndpoint {
 public:
  virtual ~LoopEndpoint() = default;
  virtual void flush() = 0;              // its session has output (a wake-up)
  virtual broker::Client* client() = 0;  // null while it has no local client
  virtual void pause_reading(bool paused) = 0;
};

class Worker {
 public:
  Worker(unsigned index, broker::Broker& broker, Admission& admission);
  ~Worker();

  core::EventLoop& loop() { return loop_; }
  broker::Broker& broker() { return broker_; }
  Admission& admission() { return admission_; }

  void start_thread();
  void join();

  // Loop thread only.
  // The socket was admitted (Admission::admit_socket) for listener. pre_layers and greeting:
  // see Connection::start.
  void adopt(int fd, std::string peer, std::shared_ptr<ListenerContext> listener,
             LayerStack pre_layers = {}, std::string greeting = {});
  Connection* find(uint64_t token);
  void remove(uint64_t token);  // deferred destruction of a closed connection
  // Endpoints are owned elsewhere and removed before they go.
  void add_endpoint(uint64_t token, LoopEndpoint* endpoint) { endpoints_[token] = endpoint; }
  void remove_endpoint(uint64_t token) { endpoints_.erase(token); }
  LoopEndpoint* find_endpoint(uint64_t token);
  // Sends DISCONNECT (0x8B on 5.0) to every client and closes them.
  void disconnect_all(uint8_t reason_code);
  size_t connection_count() const { return connections_.size(); }

 private:
  void tick();

  broker::Broker& broker_;
  Admission& admission_;
  core::EventLoop loop_;
  std::thread thread_;
  ConnectionTable connections_;
  std::unordered_map<uint64_t, LoopEndpoint*> endpoints_;
};

}  // namespace starling::net
