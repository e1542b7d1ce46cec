#include "core/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace starling::core {

namespace {
constexpr int kMaxEvents = 256;
thread_local const EventLoop* t_current_loop = nullptr;
thread_local std::chrono::steady_clock::time_point t_loop_now{};

[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

EventLoop::EventLoop(unsigned index) : index_(index) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw_errno("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the eventfd
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev) < 0) throw_errno("epoll_ctl eventfd");
}

EventLoop::~EventLoop() {
  if (event_fd_ >= 0) ::close(event_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void EventLoop::add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl add");
}

void EventLoop::modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) < 0) throw_errno("epoll_ctl mod");
}

void EventLoop::remove(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::defer(Task task) {
  deferred_.push_back(std::move(task));
}

void EventLoop::every(std::chrono::milliseconds interval, Task task) {
  timers_.push_back(Timer{interval, std::chrono::steady_clock::now() + interval, std::move(task)});
}

void EventLoop::post(Task task) {
  bool signal = false;
  {
    std::lock_guard lock(inbox_mutex_);
    tasks_.push_back(std::move(task));
    if (!signalled_) signalled_ = signal = true;
  }
  if (signal) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }
}

void EventLoop::wake(uint64_t token) {
  if (in_loop_thread()) {
    local_wakes_.push_back(token);
    return;
  }
  bool signal = false;
  {
    std::lock_guard lock(inbox_mutex_);
    wakes_.push_back(token);
    if (!signalled_) signalled_ = signal = true;
  }
  if (signal) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }
}

void EventLoop::stop() {
  stopping_.store(true, std::memory_order_release);
  post([] {});
}

void EventLoop::drain_inbox() {
  // Swapped out whole under the lock, run outside it; the vectors keep their capacity.
  static thread_local std::vector<Task> tasks;
  static thread_local std::vector<uint64_t> wakes;
  {
    std::lock_guard lock(inbox_mutex_);
    tasks.swap(tasks_);
    wakes.swap(wakes_);
    signalled_ = false;
    uint64_t counter;
    [[maybe_unused]] auto n = ::read(event_fd_, &counter, sizeof counter);
  }
  for (auto& task : tasks)
    task();
  tasks.clear();
  // Handled with the loop's own wakes after every ready event: a connection that also read
  // this iteration (and answered, say, PUBRECs with PUBRELs) writes it all in one send.
  local_wakes_.insert(local_wakes_.end(), wakes.begin(), wakes.end());
  wakes.clear();
}

void EventLoop::run_wakes() {
  static thread_local std::vector<uint64_t> wakes;
  while (!local_wakes_.empty()) {
    wakes.swap(local_wakes_);
    if (wake_handler_) {
      for (uint64_t token : wakes)
        wake_handler_(token);
    }
    wakes.clear();
  }
}

int EventLoop::next_timeout_ms() const {
  if (!local_wakes_.empty() || !deferred_.empty()) return 0;
  if (timers_.empty()) return -1;
  auto now = std::chrono::steady_clock::now();
  auto earliest = timers_.front().due;
  for (const auto& t : timers_)
    earliest = std::min(earliest, t.due);
  if (earliest <= now) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(earliest - now).count();
  return static_cast<int>(ms) + 1;
}

void EventLoop::run_timers() {
  auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < timers_.size(); ++i) {
    if (timers_[i].due <= now) {
      timers_[i].due = now + timers_[i].interval;
      timers_[i].task();  // may add timers: index, not iterator
    }
  }
}

std::chrono::steady_clock::time_point EventLoop::now() {
  return t_current_loop ? t_loop_now : std::chrono::steady_clock::now();
}

bool EventLoop::in_loop_thread() const {
  return t_current_loop == this;
}

void EventLoop::run() {
  t_current_loop = this;
  t_loop_now = std::chrono::steady_clock::now();
  epoll_event events[kMaxEvents];
  std::vector<Task> deferred;
  while (!stopping_.load(std::memory_order_acquire)) {
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, next_timeout_ms());
    if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
    t_loop_now = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
      if (handler == nullptr) {
        drain_inbox();
      } else {
        handler->on_io(events[i].events);
      }
    }
    // Wakes raised while handling events (by this thread, or by others through the inbox):
    // handled once per iteration, after all reads, so one send carries each connection's batch.
    run_wakes();
    run_timers();
    while (!deferred_.empty()) {
      deferred.swap(deferred_);
      for (auto& task : deferred)
        task();
      deferred.clear();
    }
  }
  // Last tasks posted before stop (shutdown steps) still run.
  drain_inbox();
  run_wakes();
  while (!deferred_.empty()) {
    deferred.swap(deferred_);
    for (auto& task : deferred)
      task();
    deferred.clear();
  }
}

}  // namespace starling::core
