#include "metrics/histogram.h"

#include <deque>
#include <mutex>

namespace starling::metrics {

namespace {
std::mutex g_shards_mutex;
std::deque<HistogramShard>& shards() {
  static std::deque<HistogramShard> all;  // deque: shards never move once handed out
  return all;
}
}  // namespace

HistogramShard& local_histogram_shard() {
  thread_local HistogramShard* shard = [] {
    std::lock_guard lock(g_shards_mutex);
    return &shards().emplace_back();
  }();
  return *shard;
}

HistogramSnapshot snapshot(Histogram h) {
  HistogramSnapshot s;
  std::lock_guard lock(g_shards_mutex);
  for (auto& shard : shards()) {
    auto& one = shard.values[static_cast<size_t>(h)];
    for (size_t i = 0; i < kBucketCount; ++i) {
      uint64_t n = one.buckets[i].load(std::memory_order_relaxed);
      s.buckets[i] += n;
      s.count += n;
    }
    s.sum_ns += one.sum_ns.load(std::memory_order_relaxed);
  }
  return s;
}

const char* name(Histogram h) {
  switch (h) {
    case Histogram::PublishToDeliver:
      return "publish_to_deliver_seconds";
    case Histogram::StoreCommit:
      return "store_commit_seconds";
    case Histogram::HttpRequest:
      return "http_request_seconds";
    case Histogram::KafkaProduce:
      return "kafka_produce_seconds";
    case Histogram::ClusterForward:
      return "cluster_forward_seconds";
    case Histogram::kCount:
      break;
  }
  return "unknown";
}

const char* help(Histogram h) {
  switch (h) {
    case Histogram::PublishToDeliver:
      return "Time from a PUBLISH being read to its copy being written for a subscriber";
    case Histogram::StoreCommit:
      return "Time from a store batch being committed to it being durable";
    case Histogram::HttpRequest:
      return "Time from an HTTP request being read to its response being ready";
    case Histogram::KafkaProduce:
      return "Time from a record being handed to the Kafka producer to Kafka's acknowledgement";
    case Histogram::ClusterForward:
      return "Time from a message being forwarded by another node to it being routed here (the "
             "two nodes' wall clocks)";
    case Histogram::kCount:
      break;
  }
  return "";
}

}  // namespace starling::metrics
