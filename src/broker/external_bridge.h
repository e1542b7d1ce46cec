// What the broker sees of a bridge to another system (the Kafka bridge): every routed message
// is offered to it, and a publish acknowledgement may wait for it (an AckGate).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "broker/message.h"
#include "broker/session.h"

namespace starling::broker {

struct PublishOutcome;  // broker.h

// An acknowledgement that waits for work outside the broker: the Kafka bridge's sync mode
// holds PUBACK/PUBREC (and the HTTP answer) until Kafka acknowledged every record of the
// message. The creator holds one share until it calls arm(); each expected record holds one
// more and settles it from any thread. The callback runs once, on the thread of the last
// share, with whether every record succeeded.
class AckGate {
 public:
  using Callback = std::function<void(bool ok, const std::string& error)>;

  // One more record to wait for (before arm()).
  void expect() { pending_.fetch_add(1, std::memory_order_relaxed); }
  // A record is done; error is empty on success.
  void settle(const std::string& error = {}) {
    if (!error.empty()) {
      std::lock_guard lock(mutex_);
      if (error_.empty()) error_ = error;
    }
    release();
  }
  // Sets the callback and gives up the creator's share.
  void arm(Callback callback) {
    callback_ = std::move(callback);
    release();
  }
  bool done() const { return pending_.load(std::memory_order_acquire) == 0; }
  // The first failure; empty when every record succeeded (meaningful once done()).
  std::string error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void release() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::string error;
      {
        std::lock_guard lock(mutex_);
        error = error_;
      }
      if (callback_) callback_(error.empty(), error);
    }
  }
  std::atomic<int> pending_{1};
  mutable std::mutex mutex_;
  std::string error_;  // by mutex_: the first failure
  Callback callback_;
};

// Health of a bridge, for /readyz.
struct BridgeStatus {
  bool ready = true;   // configured brokers reachable
  std::string detail;  // shown by /readyz
};

class ExternalBridge {
 public:
  virtual ~ExternalBridge() = default;
  // Called by Broker::publish for each routed message that did not come from the bridge
  // itself. May add store writes to durable (the publish's acknowledgement waits for them),
  // set outcome.gate (the acknowledgement waits for it too), outcome.congested (pause the
  // publisher: resumed through ConnectionControl) or outcome.refused (not taken: say so).
  virtual void on_publish(const MessagePtr& msg, Attachment publisher_link, PublishBatch* durable,
                          PublishOutcome& outcome) = 0;
  virtual BridgeStatus status() const = 0;
  // Prometheus text of the bridge's own families (lag per group, buffer depth ...).
  virtual void render_metrics(std::string& out) const = 0;
};

}  // namespace starling::broker
