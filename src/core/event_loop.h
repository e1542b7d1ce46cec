// One epoll event loop, run by one worker thread. Knows nothing of MQTT.
//
// Other threads talk to a loop in two ways:
//  - post(task): a closure run on the loop thread (rare events: new connection, takeover, kick).
//  - wake(token): the hot path of cross-thread delivery. Tokens are coalesced in a vector under a
//    short lock and the loop's eventfd is written only on the empty to non-empty transition, so
//    a burst of messages for many connections costs one wake-up and no allocation. Woken tokens
//    are handled after all ready events of an iteration, so a connection that was both read and
//    woken is written once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace starling::core {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void on_io(uint32_t events) = 0;  // epoll event mask
};

class EventLoop {
 public:
  using Task = std::function<void()>;
  using WakeHandler = std::function<void(uint64_t token)>;

  explicit EventLoop(unsigned index);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  unsigned index() const { return index_; }

  // Loop thread only.
  void add(int fd, uint32_t events, IoHandler* handler);
  void modify(int fd, uint32_t events, IoHandler* handler);
  void remove(int fd);
  // Runs at the end of the current iteration, after all ready events were handled: a handler
  // destroyed there cannot be touched by a later event of the same epoll_wait batch.
  void defer(Task task);
  // Called every interval on the loop thread.
  void every(std::chrono::milliseconds interval, Task task);

  // Any thread.
  void post(Task task);
  void wake(uint64_t token);
  void stop();
  bool in_loop_thread() const;

  void set_wake_handler(WakeHandler handler) { wake_handler_ = std::move(handler); }

  // The time at the start of this loop iteration when called on a loop thread (one clock read
  // per batch of events instead of one per packet), the current time elsewhere.
  static std::chrono::steady_clock::time_point now();

  // Runs until stop(). Call from the thread that owns the loop.
  void run();

 private:
  struct Timer {
    std::chrono::milliseconds interval;
    std::chrono::steady_clock::time_point due;
    Task task;
  };

  void drain_inbox();
  void run_wakes();  // the wake handler for every token woken so far, once per iteration
  int next_timeout_ms() const;
  void run_timers();

  unsigned index_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<bool> stopping_{false};

  std::mutex inbox_mutex_;
  std::vector<Task> tasks_;      // guarded by inbox_mutex_
  std::vector<uint64_t> wakes_;  // guarded by inbox_mutex_
  bool signalled_ = false;       // guarded by inbox_mutex_: eventfd written, not yet read

  std::vector<uint64_t> local_wakes_;  // wakes from the loop thread itself: no eventfd needed
  std::vector<Task> deferred_;
  std::vector<Timer> timers_;
  WakeHandler wake_handler_;
};

}  // namespace starling::core
