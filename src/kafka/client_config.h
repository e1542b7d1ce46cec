// librdkafka configurations for the bridge's clients: the bootstrap address, Starling's
// defaults, then the user's [kafka.properties] and per-kind properties on top (the user wins).
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>

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

// Sets one property; throws std::runtime_error naming it.
void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value);

// bootstrap: the address in force (the mock cluster's when kafka.mock is on).
ConfPtr producer_conf(const config::KafkaSettings& settings, const std::string& bootstrap);
ConfPtr consumer_conf(const config::KafkaSettings& settings, const std::string& bootstrap,
                      const config::KafkaConsumeRule& rule);

// librdkafka's log lines go to spdlog at a matching level.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message);

}  // namespace starling::kafka
