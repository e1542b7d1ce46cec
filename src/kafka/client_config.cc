#include "kafka/client_config.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace starling::kafka {

namespace {

bool user_sets(const config::PropertyList& list, const std::string& name) {
  return std::any_of(list.begin(), list.end(), [&](const auto& p) { return p.first == name; });
}

ConfPtr base_conf(const config::KafkaSettings& settings, const std::string& bootstrap,
                  const config::PropertyList& kind_properties,
                  const config::PropertyList& defaults) {
  ConfPtr conf(rd_kafka_conf_new());
  set(conf.get(), "bootstrap.servers", bootstrap);
  set(conf.get(), "client.id", "starling");
  for (const auto& [name, value] : defaults) {
    if (!user_sets(settings.properties, name) && !user_sets(kind_properties, name)) {
      set(conf.get(), name, value);
    }
  }
  for (const auto& [name, value] : settings.properties)
    set(conf.get(), name, value);
  for (const auto& [name, value] : kind_properties)
    set(conf.get(), name, value);
  rd_kafka_conf_set_log_cb(conf.get(), log_to_spdlog);
  return conf;
}

}  // namespace

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
      RD_KAFKA_CONF_OK) {
    throw std::runtime_error("Kafka property " + name + ": " + error);
  }
}

ConfPtr producer_conf(const config::KafkaSettings& settings, const std::string& bootstrap) {
  // Idempotence: retries inside librdkafka neither duplicate nor reorder, and acks=all, which
  // sync mode promises. linger.ms batches records of many publishers into one request.
  // librdkafka's own queue holds at least the bridge's buffer, so the buffer is the limit.
  const uint64_t queue = std::min<uint64_t>(settings.buffer_max_messages * 2 + 100000, 10000000);
  const config::PropertyList defaults = {
      {"enable.idempotence", "true"},
      {"linger.ms", "5"},
      {"queue.buffering.max.messages", std::to_string(queue)},
      {"queue.buffering.max.kbytes", "2097151"},
  };
  return base_conf(settings, bootstrap, settings.producer_properties, defaults);
}

ConfPtr consumer_conf(const config::KafkaSettings& settings, const std::string& bootstrap,
                      const config::KafkaConsumeRule& rule) {
  // Offsets are stored by the bridge once records are routed (and durable); the automatic
  // commit then commits only those, every second: that second bounds the duplicates after a
  // crash.
  const config::PropertyList defaults = {
      {"enable.auto.offset.store", "false"},
      {"enable.auto.commit", "true"},
      {"auto.commit.interval.ms", "1000"},
      {"enable.partition.eof", "false"},
  };
  ConfPtr conf = base_conf(settings, bootstrap, settings.consumer_properties, defaults);
  set(conf.get(), "group.id", rule.group);
  set(conf.get(), "auto.offset.reset", rule.offset_reset);
  return conf;
}

bool user_sets_consumer_property(const config::KafkaSettings& settings, const std::string& name) {
  return user_sets(settings.properties, name) || user_sets(settings.consumer_properties, name);
}

ssize_t consume_available(rd_kafka_queue_t* queue, int wait_ms,
                          std::vector<rd_kafka_message_t*>& out) {
  rd_kafka_message_t* first = rd_kafka_consume_queue(queue, wait_ms);
  if (first == nullptr) return 0;
  out[0] = first;
  const ssize_t more = rd_kafka_consume_batch_queue(queue, 0, out.data() + 1, out.size() - 1);
  return 1 + std::max<ssize_t>(more, 0);
}

int64_t assignment_lag(rd_kafka_t* rk, const char* topic, int& assigned) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  assigned = -1;
  if (rd_kafka_assignment(rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || list == nullptr) return -1;
  assigned = list->cnt;
  rd_kafka_position(rk, list);
  int64_t total = 0;
  bool known = list->cnt == 0;  // nothing assigned: nothing behind
  for (int i = 0; i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    if (topic && std::strcmp(topic, p.topic) != 0) continue;
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(rk, p.topic, p.partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      continue;
    }
    const int64_t position = p.offset >= 0 ? p.offset : low;
    total += std::max<int64_t>(0, high - position);
    known = true;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return known ? total : -1;
}

void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const char* name = rk ? rd_kafka_name(rk) : "kafka";
  if (level <= 3) {
    spdlog::error("kafka {} {}: {}", name, facility, message);
  } else if (level == 4) {
    spdlog::warn("kafka {} {}: {}", name, facility, message);
  } else if (level <= 6) {
    spdlog::info("kafka {} {}: {}", name, facility, message);
  } else {
    spdlog::debug("kafka {} {}: {}", name, facility, message);
  }
}

}  // namespace starling::kafka
