// Who may open a connection: the global, per-listener and per-address connection limits and
// the per-address connection rate. Any thread (listeners and workers call it); one mutex,
// taken once per accept and once per close, never per message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "core/token_bucket.h"

namespace starling::net {

class Admission {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Verdict : uint8_t {
    Admitted,
    ServerFull,    // [limits] max_connections
    ListenerFull,  // [listeners.NAME] max_connections
    AddressFull,   // [limits] max_connections_per_address
    AddressRate,   // [limits] max_connection_rate_per_address
  };

  // A listener's count of open connections (held by the listener's context).
  struct ListenerCount {
    std::atomic<uint32_t> open{0};
  };

  // The socket itself: global and listener limits. Counts it when admitted.
  Verdict admit_socket(ListenerCount& listener, uint32_t listener_max,
                       const config::Limits& limits);
  void release_socket(ListenerCount& listener);

  // The source address ("10.0.0.1", "::1"): count and rate. Counts it when admitted. Separate
  // from the socket because behind a PROXY protocol listener the address is known only once
  // the header is read.
  Verdict admit_address(const std::string& address, const config::Limits& limits,
                        Clock::time_point now);
  void release_address(const std::string& address);

  uint32_t open_sockets() const { return open_.load(std::memory_order_relaxed); }
  size_t tracked_addresses() const;

  // The limit's counter (metrics) for a refusal.
  static void count(Verdict verdict);
  static const char* describe(Verdict verdict);

 private:
  struct PerAddress {
    uint32_t open = 0;
    core::TokenBucket connects;  // max_connection_rate_per_address
  };
  // Forgets addresses with nothing open whose bucket is full again, so a scan of many source
  // addresses does not grow the table without end.
  void prune(Clock::time_point now, const config::Limits& limits);

  std::atomic<uint32_t> open_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, PerAddress> addresses_;
  Clock::time_point last_prune_{};
};

}  // namespace starling::net
