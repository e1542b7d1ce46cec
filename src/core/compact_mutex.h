// A mutex in four bytes, for objects there are hundreds of thousands of (one per session).
//
// std::mutex is a pthread_mutex_t, 40 bytes; a session holds one for deliveries from other
// workers. This is the three-state futex mutex of Drepper's "Futexes Are Tricky" (0 free,
// 1 locked, 2 locked with waiters) on C++20's atomic wait/notify, which libstdc++ maps to a
// futex for 4-byte integers. Uncontended it costs what std::mutex costs: one compare-exchange
// to lock, one exchange to unlock; only an unlock that saw waiters makes a system call. Not
// recursive, no timed locking; works with std::lock_guard and std::unique_lock.
#pragma once

#include <atomic>
#include <cstdint>

namespace starling::core {

class CompactMutex {
 public:
  CompactMutex() = default;
  CompactMutex(const CompactMutex&) = delete;
  CompactMutex& operator=(const CompactMutex&) = delete;

  void lock() {
    uint32_t state = kFree;
    if (state_.compare_exchange_strong(state, kLocked, std::memory_order_acquire)) return;
    // Contended: mark it as having waiters, then sleep until an unlock wakes us.
    if (state != kContended) state = state_.exchange(kContended, std::memory_order_acquire);
    while (state != kFree) {
      state_.wait(kContended, std::memory_order_relaxed);
      state = state_.exchange(kContended, std::memory_order_acquire);
    }
  }

  bool try_lock() {
    uint32_t state = kFree;
    return state_.compare_exchange_strong(state, kLocked, std::memory_order_acquire);
  }

  void unlock() {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) state_.notify_one();
  }

 private:
  static constexpr uint32_t kFree = 0;
  static constexpr uint32_t kLocked = 1;
  static constexpr uint32_t kContended = 2;
  std::atomic<uint32_t> state_{kFree};
};

static_assert(sizeof(CompactMutex) == 4);

}  // namespace starling::core
