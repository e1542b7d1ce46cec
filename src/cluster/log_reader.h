// The cluster's reading side: one thread, one librdkafka consumer without group membership
// (partitions are assigned by hand, so no rebalance ever waits on a dead node). It reads the
// shared state (nodes, routes, sessions, retained) from the beginning of the log, and this
// node's inbox from where it left off: with a store, the offsets written in the same store
// batch as what they routed (a forward is routed once across crashes); without one, the
// offsets committed for the group starling.<name>.<node>. It also sends the heartbeats.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "kafka/client_config.h"

namespace starling::cluster {

class Cluster;

class LogReader {
 public:
  // Throws std::runtime_error when librdkafka refuses the configuration.
  LogReader(Cluster& cluster, const config::KafkaSettings& kafka, const std::string& bootstrap,
            uint32_t inbox_partitions);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Asks Kafka to create the cluster's topics (compacted where only the last record of a key
  // matters) before anything is written to them: a Kafka that creates topics on first use
  // would make them with its default policy (delete). Kafka answers "already exists" after
  // the first node; librdkafka's mock cluster does not know the request (it creates topics
  // on first use, 4 partitions). Bounded by a few seconds.
  void create_topics();
  void start();
  // Stops reading; the stored inbox offsets are committed.
  void stop();

  int64_t inbox_lag() const { return inbox_lag_.load(std::memory_order_relaxed); }
  // How far the routes and the retained logs have been read: partition -> next offset (any
  // thread).
  using Positions = std::vector<std::pair<int32_t, int64_t>>;
  void positions(Positions& routes, Positions& retained) const;

 private:
  void run();
  // Creates missing topics and assigns every partition; false while Kafka cannot be reached.
  bool assign();
  void read_batch(rd_kafka_message_t** messages, ssize_t count);
  void update_lag();
  bool state_caught_up() const;

  Cluster& cluster_;
  const uint32_t inbox_partitions_;
  const std::string inbox_;
  kafka::HandlePtr rk_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool assigned_ = false;
  bool caught_up_ = false;
  // Per state partition: the end at assignment, and the next offset to read.
  std::map<std::pair<std::string, int32_t>, int64_t> state_end_;
  std::map<std::pair<std::string, int32_t>, int64_t> state_next_;
  // Claims read before catching up: only the last one per client counts.
  std::unordered_map<std::string, std::string> early_claims_;
  std::atomic<int64_t> inbox_lag_{-1};
  mutable std::mutex positions_mutex_;
  Positions routes_read_;    // by positions_mutex_
  Positions retained_read_;  // by positions_mutex_
};

}  // namespace starling::cluster
