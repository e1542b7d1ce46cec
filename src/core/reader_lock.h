// A reader/writer lock for read-mostly data read on every publish (the subscription tree).
//
// std::shared_mutex keeps one reader count that every reader writes: with all workers
// publishing, that cache line bounces between cores and took a fifth of the broker's CPU in
// the pairs benchmark. Here each thread counts itself in its own cache line; a writer raises a
// flag and waits for every line to drain. Writers are preferred: readers that see the flag
// step back, so SUBSCRIBE is never starved by a stream of publishes. Not reentrant: a thread
// must not take the read side twice.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>

namespace starling::core {

class ReaderLock {
 public:
  void lock_shared() {
    Slot& slot = my_slot();
    for (;;) {
      slot.readers.fetch_add(1, std::memory_order_seq_cst);
      if (!writer_.load(std::memory_order_seq_cst)) return;
      slot.readers.fetch_sub(1, std::memory_order_release);
      while (writer_.load(std::memory_order_acquire))
        std::this_thread::yield();
    }
  }

  void unlock_shared() { my_slot().readers.fetch_sub(1, std::memory_order_release); }

  void lock() {
    writer_mutex_.lock();
    writer_.store(true, std::memory_order_seq_cst);
    for (Slot& slot : slots_) {
      while (slot.readers.load(std::memory_order_acquire) != 0)
        std::this_thread::yield();
    }
  }

  void unlock() {
    writer_.store(false, std::memory_order_release);
    writer_mutex_.unlock();
  }

 private:
  static constexpr size_t kSlots = 64;
  struct alignas(64) Slot {
    std::atomic<int> readers{0};
  };

  // Threads get slots in turn; with one thread per core they rarely share one, and sharing is
  // only slower, never wrong.
  Slot& my_slot() {
    static std::atomic<size_t> next{0};
    thread_local size_t index = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
    return slots_[index];
  }

  std::array<Slot, kSlots> slots_{};
  alignas(64) std::atomic<bool> writer_{false};
  std::mutex writer_mutex_;
};

}  // namespace starling::core
