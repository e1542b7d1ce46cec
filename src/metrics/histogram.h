// Latency histograms with fixed buckets from 50 us to 10 s, sharded per thread like the
// counters: observing is a bucket search over 17 bounds and two relaxed adds on a cache line
// only this thread writes. Readers (/metrics) sum the shards.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace starling::metrics {

enum class Histogram : uint8_t {
  PublishToDeliver,  // message received -> written into a subscriber's output
  StoreCommit,       // batch committed -> durable (synced) in the store
  HttpRequest,       // HTTP request complete -> response ready
  KafkaProduce,      // record handed to librdkafka -> Kafka's acknowledgement
  ClusterForward,    // forwarded by its node -> routed on this one (wall clocks)
  kCount
};

inline constexpr size_t kHistogramCount = static_cast<size_t>(Histogram::kCount);

// Upper bounds in nanoseconds: 50us, 100us, 250us, 500us, 1ms ... 10s (1-2.5-5 steps).
inline constexpr std::array<uint64_t, 17> kBucketBoundsNs = {
    50'000,      100'000,       250'000,       500'000,       1'000'000,     2'500'000,
    5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,   250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr size_t kBucketCount = kBucketBoundsNs.size() + 1;  // + the +Inf bucket

struct alignas(64) HistogramShard {
  struct One {
    std::array<std::atomic<uint64_t>, kBucketCount> buckets{};  // not cumulative
    std::atomic<uint64_t> sum_ns{0};
  };
  std::array<One, kHistogramCount> values{};
};

HistogramShard& local_histogram_shard();

inline void observe_ns(Histogram h, uint64_t ns) {
  size_t i = 0;
  while (i < kBucketBoundsNs.size() && ns > kBucketBoundsNs[i])
    ++i;
  auto& one = local_histogram_shard().values[static_cast<size_t>(h)];
  one.buckets[i].fetch_add(1, std::memory_order_relaxed);
  one.sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

inline void observe(Histogram h, std::chrono::steady_clock::duration d) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  observe_ns(h, ns > 0 ? static_cast<uint64_t>(ns) : 0);
}

struct HistogramSnapshot {
  std::array<uint64_t, kBucketCount> buckets{};  // not cumulative
  uint64_t count = 0;
  uint64_t sum_ns = 0;
};

HistogramSnapshot snapshot(Histogram h);
const char* name(Histogram h);
const char* help(Histogram h);

}  // namespace starling::metrics
