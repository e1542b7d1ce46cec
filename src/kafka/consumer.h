// Kafka to MQTT: one [[kafka.consume]] rule, one consumer in its group, one thread.
//
// Records are read in batches, each batch routed through the broker as one publish batch;
// their offsets are stored for the periodic commit only once that batch is durable (queued
// records of persistent sessions included). After a crash, the records past the last commit
// are read again: at least once, duplicates bounded by the commit interval. When the group
// rebalances (a node joins or leaves), the partitions taken away are handed over exactly:
// what was routed is made durable and its offsets committed before they go.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "broker/broker.h"
#include "config/config.h"
#include "config/kafka_template.h"
#include "kafka/client_config.h"

namespace starling::kafka {

class AvroConfluentDecoder;

class Consumer {
 public:
  // decoder: for codec "avro-confluent" (null otherwise). Throws std::runtime_error when
  // librdkafka refuses the configuration.
  // instance: this broker's stable name ([cluster] node_id; "" none): the consumer joins its
  // group as a static member (group.instance.id "<instance>-<index>"), so that after a crash
  // its partitions wait for it instead of for session.timeout.ms and a rebalance.
  Consumer(size_t index, const config::KafkaConsumeRule& rule,
           const config::KafkaSettings& settings, const std::string& bootstrap,
           broker::Broker& broker, AvroConfluentDecoder* decoder, const std::string& instance);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  void start();
  // Stops reading; offsets of routed records are stored once durable (store->flush() by the
  // caller), then close() commits them and leaves the group.
  void stop_reading();
  void close();

  size_t index() const { return index_; }
  const config::KafkaConsumeRule& rule() const { return rule_; }
  // Records behind the end of the assigned partitions (from the last fetch), -1 unknown.
  int64_t lag() const { return lag_.load(std::memory_order_relaxed); }
  int64_t assigned_partitions() const { return assigned_.load(std::memory_order_relaxed); }

 private:
  void run();
  void route_batch(rd_kafka_message_t** messages, ssize_t count);
  void update_lag();
  // librdkafka's rebalance callback (on this consumer's thread, inside consume).
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  // Partitions are being taken away: every routed batch durable, its offsets committed.
  void hand_over(rd_kafka_t* rk);

  const size_t index_;
  const config::KafkaConsumeRule rule_;
  broker::Broker& broker_;
  AvroConfluentDecoder* const decoder_;
  Template topic_template_;
  HandlePtr rk_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> lag_{-1};
  std::atomic<int64_t> assigned_{0};
  std::thread thread_;
};

}  // namespace starling::kafka
