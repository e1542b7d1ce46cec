// core: the reader lock keeps writers exclusive, the event loop runs posted tasks and
// coalesces wake tokens.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "core/event_loop.h"
#include "core/reader_lock.h"

namespace starling::core {
namespace {

TEST(ReaderLock, WritersAreExclusiveAndReadersSeeWholeUpdates) {
  ReaderLock lock;
  // Two counters a writer changes together; a reader must never see them differ.
  int64_t a = 0, b = 0;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        std::shared_lock guard(lock);
        if (a != b) torn.fetch_add(1);
        reads.fetch_add(1);
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::unique_lock guard(lock);
        ++a;
        ++b;
      }
    });
  }
  for (auto& t : writers)
    t.join();
  stop = true;
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(a, 4000);
  EXPECT_EQ(b, 4000);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST(EventLoop, RunsPostedTasksAndDeliversWakeTokens) {
  EventLoop loop(0);
  std::mutex m;
  std::vector<uint64_t> tokens;
  std::atomic<int> tasks{0};
  loop.set_wake_handler([&](uint64_t t) {
    std::lock_guard g(m);
    tokens.push_back(t);
  });
  std::thread runner([&] { loop.run(); });
  for (uint64_t t = 1; t <= 100; ++t)
    loop.wake(t);
  for (int i = 0; i < 10; ++i)
    loop.post([&] { tasks.fetch_add(1); });
  // A posted task runs after the wakes posted before it: wait for a marker task.
  std::atomic<bool> marker{false};
  loop.post([&] { marker = true; });
  while (!marker.load())
    std::this_thread::yield();
  loop.stop();
  runner.join();
  EXPECT_EQ(tasks.load(), 10);
  std::lock_guard g(m);
  ASSERT_EQ(tokens.size(), 100u);
  for (uint64_t t = 1; t <= 100; ++t)
    EXPECT_EQ(tokens[t - 1], t);
}

TEST(EventLoop, NowIsTheIterationTimeOnTheLoopThread) {
  EventLoop loop(0);
  std::chrono::steady_clock::time_point seen_a{}, seen_b{};
  std::atomic<bool> done{false};
  loop.post([&] {
    seen_a = EventLoop::now();
    seen_b = EventLoop::now();
    done = true;
  });
  std::thread runner([&] { loop.run(); });
  while (!done.load())
    std::this_thread::yield();
  loop.stop();
  runner.join();
  EXPECT_EQ(seen_a, seen_b);  // cached per iteration: no clock read per call
  EXPECT_NE(seen_a, std::chrono::steady_clock::time_point{});
}

}  // namespace
}  // namespace starling::core
