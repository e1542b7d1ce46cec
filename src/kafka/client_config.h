// librdkafka configurations for the bridge's clients: the bootstrap address, Starling's
// defaults, then the user's [kafka.properties] and per-kind properties on top (the user wins).
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace starling::kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using ListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

// Sets one property; throws std::runtime_error naming it.
void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value);

// bootstrap: the address in force (the mock cluster's when kafka.mock is on).
ConfPtr producer_conf(const config::KafkaSettings& settings, const std::string& bootstrap);
ConfPtr consumer_conf(const config::KafkaSettings& settings, const std::string& bootstrap,
                      const config::KafkaConsumeRule& rule);

// Whether the user set a consumer property ([kafka.properties] or
// [kafka.consumer_properties]): then Starling's own choice for it steps back.
bool user_sets_consumer_property(const config::KafkaSettings& settings, const std::string& name);

// Waits up to wait_ms for a first message of queue, then takes what else is already there
// without waiting (rd_kafka_consume_batch_queue alone waits for a full batch or the timeout,
// which is latency at low rates). Returns how many it put into out (its size is the most).
ssize_t consume_available(rd_kafka_queue_t* queue, int wait_ms,
                          std::vector<rd_kafka_message_t*>& out);

// Records behind the end of a consumer's assigned partitions (only those of `topic` when not
// null), from its positions and the cached watermarks: -1 when unknown; `assigned` gets how
// many partitions are assigned (-1: the assignment could not be read). Never blocks.
int64_t assignment_lag(rd_kafka_t* rk, const char* topic, int& assigned);

// librdkafka's log lines go to spdlog at a matching level.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message);

}  // namespace starling::kafka
