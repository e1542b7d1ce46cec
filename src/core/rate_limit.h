// Lets a hot-path event through at most once per interval (for logs that must not flood).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace starling::core {

class RateLimit {
 public:
  explicit constexpr RateLimit(std::chrono::milliseconds interval)
      : interval_ns_(interval.count() * 1000000) {}

  // True for the first caller in each interval; never blocks.
  bool allow() {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = last_ns_.load(std::memory_order_relaxed);
    if (now - last < interval_ns_ ||
        !last_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      denied_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  // Events refused since the last call (for "... and N more" in the next line let through).
  uint64_t take_denied() { return denied_.exchange(0, std::memory_order_relaxed); }

 private:
  const int64_t interval_ns_;
  std::atomic<int64_t> last_ns_{INT64_MIN / 2};
  std::atomic<uint64_t> denied_{0};
};

}  // namespace starling::core
