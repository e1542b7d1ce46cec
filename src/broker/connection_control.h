// What the broker may ask of a connection it does not own: the net layer implements it, so the
// broker never touches sockets.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "broker/attachment.h"

namespace starling::broker {

class Client;

class ConnectionControl {
 public:
  virtual ~ConnectionControl() = default;
  // Close the connection with a DISCONNECT of this reason (5.0) on its own loop.
  virtual void kick(Attachment connection, uint8_t reason_code) = 0;
  // A publisher paused for a full receiver may read again.
  virtual void resume_reading(Attachment connection) = 0;
  // A CONNECT that waited for its session from another node of the cluster goes on.
  virtual void cluster_wait_over(Attachment connection) = 0;
  // Runs task with the connection's Client on its loop; nothing when the connection is gone
  // (answers from the HTTP auth service).
  virtual void post_to_client(Attachment connection, std::function<void(Client&)> task) = 0;
};

// The broker's handle on the net layer's ConnectionControl, handed over once the server exists
// (Broker::set_connection_control, like the bridge). Sessions keep a reference to this relay,
// which outlives them; before a server is attached (start-up restore, unit tests) requests go
// nowhere.
class ConnectionControlRelay final : public ConnectionControl {
 public:
  void attach(ConnectionControl* target) { target_.store(target, std::memory_order_release); }
  bool attached() const { return target_.load(std::memory_order_acquire) != nullptr; }
  void kick(Attachment connection, uint8_t reason_code) override {
    if (auto* target = target_.load(std::memory_order_acquire))
      target->kick(connection, reason_code);
  }
  void resume_reading(Attachment connection) override {
    if (auto* target = target_.load(std::memory_order_acquire)) target->resume_reading(connection);
  }
  void cluster_wait_over(Attachment connection) override {
    if (auto* target = target_.load(std::memory_order_acquire)) {
      target->cluster_wait_over(connection);
    }
  }
  void post_to_client(Attachment connection, std::function<void(Client&)> task) override {
    if (auto* target = target_.load(std::memory_order_acquire)) {
      target->post_to_client(connection, std::move(task));
    }
  }

 private:
  std::atomic<ConnectionControl*> target_{nullptr};
};

}  // namespace starling::broker
