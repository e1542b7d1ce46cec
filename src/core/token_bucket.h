// A token bucket holding one second's worth of events at a given rate: bursts up to the rate
// pass, then the rate. For one owner (a connection, or a table under its own lock); the rate is
// passed on each call, so a reloaded limit applies at once.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace starling::core {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // Refills for the time since the last call (a bucket never used is full) and says whether a
  // token is there; take() it when the event goes ahead.
  bool available(uint32_t rate, Clock::time_point now) {
    if (refilled_ == Clock::time_point{}) {
      tokens_ = rate;
    } else {
      const double elapsed = std::chrono::duration<double>(now - refilled_).count();
      tokens_ = std::min<double>(rate, tokens_ + elapsed * rate);
    }
    refilled_ = now;
    return tokens_ >= 1;
  }
  void take() { tokens_ -= 1; }

  // Whether the bucket would be full at now, nothing being taken meanwhile.
  bool full_at(uint32_t rate, Clock::time_point now) const {
    if (refilled_ == Clock::time_point{}) return true;
    const double elapsed = std::chrono::duration<double>(now - refilled_).count();
    return tokens_ + elapsed * rate >= rate;
  }

 private:
  double tokens_ = 0;
  Clock::time_point refilled_{};
};

}  // namespace starling::core
