// [kafka]: the Kafka bridge: the cluster, librdkafka properties, and the rules that carry MQTT
// publishes to Kafka ([[kafka.produce]]) and Kafka records to MQTT ([[kafka.consume]]).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/error.h"

namespace starling::config {

// [[kafka.produce]]: MQTT (and HTTP) publishes matching filter go to a Kafka topic.
struct KafkaProduceRule {
  std::string filter;              // MQTT topic filter
  std::string topic;               // Kafka topic template ({topic}, {topic[N]}, {clientid}, ...)
  std::string key = "{clientid}";  // key template; "" sends records without a key
  // MQTT attributes sent as Kafka headers: topic, clientid, username, qos, retain,
  // content_type, user_properties.
  std::vector<std::string> headers = {"topic",    "qos",          "retain",         "clientid",
                                      "username", "content_type", "user_properties"};
  std::string partitioner;     // "": librdkafka's default; a librdkafka name or "key-hash"
  std::string mode = "async";  // "async": ack on acceptance; "sync": ack after Kafka's ack
  SourceLine line;             // where the rule was declared, for errors and logs
  bool operator==(const KafkaProduceRule&) const = default;
};

// [[kafka.consume]]: Kafka records of topics go to MQTT subscribers.
struct KafkaConsumeRule {
  std::vector<std::string> topics;           // names, or regexes starting with '^'
  std::string group = "starling";            // consumer group
  std::string offset_reset = "latest";       // where a group without offsets starts
  std::string mqtt_topic = "{kafka_topic}";  // template ({kafka_topic}, {key}, {partition}, ...)
  uint8_t qos = 1;
  bool retain = false;
  bool user_properties = true;  // Kafka headers become MQTT 5 user properties
  std::string codec = "none";   // "none" (pass-through) | "avro-confluent"
  SourceLine line;              // where the rule was declared, for errors and logs
  bool operator==(const KafkaConsumeRule&) const = default;
};

using PropertyList = std::vector<std::pair<std::string, std::string>>;

struct KafkaSettings {
  std::string bootstrap;  // bootstrap.servers
  bool mock = false;      // start librdkafka's mock cluster in the broker (trying things out)
  uint32_t mock_brokers = 1;
  std::string schema_registry;  // URL of the Confluent Schema Registry (codec avro-confluent)
  uint32_t schema_registry_timeout_ms = 5000;
  // The async buffer: records accepted and not yet acknowledged by Kafka. Publishers are
  // paused from 80% of it; past it, records are refused (counted, and said to the publisher).
  uint64_t buffer_max_messages = 100000;
  uint64_t buffer_max_bytes = 256ull << 20;
  PropertyList properties;           // [kafka.properties]: every client (librdkafka names)
  PropertyList producer_properties;  // [kafka.producer_properties]
  PropertyList consumer_properties;  // [kafka.consumer_properties]
  std::vector<KafkaProduceRule> produce;
  std::vector<KafkaConsumeRule> consume;
  bool enabled() const { return !produce.empty() || !consume.empty(); }
  bool operator==(const KafkaSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
class Reader;
// The [kafka] section, for the loader (config.cc).
Field<Config> kafka_section();
// Checks across [kafka] keys, which the loader makes once the whole file is read.
void check_kafka(const Reader& r, const KafkaSettings& kafka);

}  // namespace starling::config
