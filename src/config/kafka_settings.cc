#include "config/kafka_settings.h"

#include <librdkafka/rdkafka.h>
#include <regex.h>

#include <memory>
#include <stdexcept>
#include <string_view>

#include "config/config.h"
#include "config/kafka_template.h"
#include "config/reader.h"
#include "mqtt/topic.h"

namespace starling::config {

namespace {

using Direction = kafka::Template::Direction;

constexpr std::string_view kProduceModes[] = {"async", "sync"};
constexpr std::string_view kOffsetResets[] = {"earliest", "latest"};
constexpr std::string_view kCodecs[] = {"none", "avro-confluent"};
constexpr std::string_view kKafkaHeaders[] = {"topic",  "clientid",     "username",       "qos",
                                              "retain", "content_type", "user_properties"};
// librdkafka's partitioners, and "key-hash" (murmur2 of the key, as the Java client does).
constexpr std::string_view kPartitioners[] = {
    "key-hash", "random",         "consistent", "consistent_random",
    "murmur2",  "murmur2_random", "fnv1a",      "fnv1a_random"};

// Templates are parsed at load so that a typo is an error with its line; the bridge parses
// them again from the text.
kafka::Template read_template(const Reader& r, const toml::node& n, const std::string& path,
                              Direction direction) {
  std::string text = r.string(n, path);
  try {
    return kafka::Template::parse(text, direction);
  } catch (const std::invalid_argument& e) {
    r.fail(n, path + " = " + quoted(text) + ": " + e.what());
  }
}

std::string non_empty_string(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  if (value.empty()) r.fail(n, path + " must not be empty");
  return value;
}

// --- [[kafka.produce]] ------------------------------------------------------------------------

std::string read_filter(const Reader& r, const toml::node& n, const std::string& path) {
  std::string filter = r.string(n, path);
  std::string_view group, rest;
  if (!mqtt::valid_topic_filter(filter) || mqtt::split_shared_filter(filter, group, rest)) {
    r.fail(n,
           path + " = " + quoted(filter) + " is not an MQTT topic filter (such as \"sensors/#\")");
  }
  return filter;
}

std::string read_kafka_topic(const Reader& r, const toml::node& n, const std::string& path) {
  kafka::Template t = read_template(r, n, path, Direction::ToKafka);
  if (t.constant() && !kafka::valid_kafka_topic(t.literal())) {
    r.fail(n, path + " = " + quoted(t.text()) +
                  " is not a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)");
  }
  return t.text();
}

std::string read_key(const Reader& r, const toml::node& n, const std::string& path) {
  return read_template(r, n, path, Direction::ToKafka).text();
}

std::vector<std::string> read_headers(const Reader& r, const toml::node& n,
                                      const std::string& path) {
  return r.string_array(n, path, true, [&](const toml::node& item, const std::string& v) {
    if (!one_of(v, kKafkaHeaders)) {
      r.fail(item, path + " items must be among " + join(kKafkaHeaders) + ", not " + quoted(v));
    }
  });
}

const std::vector<Field<KafkaProduceRule>>& produce_fields() {
  using P = KafkaProduceRule;
  static const std::vector<Field<P>> fields = {
      field("filter", &P::filter, read_filter),
      field("topic", &P::topic, read_kafka_topic),
      field("key", &P::key, read_key),
      field("headers", &P::headers, read_headers),
      one_of_field("partitioner", &P::partitioner, kPartitioners),
      one_of_field("mode", &P::mode, kProduceModes),
  };
  return fields;
}

std::vector<KafkaProduceRule> read_produce_rules(const Reader& r, const toml::node& node,
                                                 const std::string& path) {
  std::vector<KafkaProduceRule> rules;
  r.table_array(node, path, [&](const toml::table& table, const std::string& rule_path) {
    KafkaProduceRule rule;
    rule.line.value = line_of(table.source());
    r.read_table<KafkaProduceRule>(rule, table, rule_path, produce_fields());
    if (!table.contains("filter")) {
      r.fail(rule.line.value, rule_path + " needs a filter, e.g. filter = \"sensors/#\"");
    }
    if (!table.contains("topic")) {
      r.fail(rule.line.value, rule_path + " needs a topic, e.g. topic = \"sensors\"");
    }
    rules.push_back(std::move(rule));
  });
  return rules;
}

// --- [[kafka.consume]] ------------------------------------------------------------------------

std::vector<std::string> read_topics(const Reader& r, const toml::node& n,
                                     const std::string& path) {
  return r.string_array(n, path, false, [&](const toml::node& item, const std::string& v) {
    if (!v.starts_with("^") && !kafka::valid_kafka_topic(v)) {
      r.fail(item, path + ": " + quoted(v) +
                       " is neither a Kafka topic name nor a regex starting with '^'");
    }
    if (v.starts_with("^")) {
      // librdkafka matches subscription regexes with POSIX extended regexes (regcomp): a bad
      // one would otherwise fail only once the consumer runs.
      regex_t re;
      const int err = regcomp(&re, v.c_str(), REG_EXTENDED | REG_NOSUB);
      if (err == 0) {
        regfree(&re);
      } else {
        char why[256];
        regerror(err, &re, why, sizeof why);
        r.fail(item, path + ": " + quoted(v) + " is not a valid regex: " + why);
      }
    }
  });
}

std::string read_mqtt_topic(const Reader& r, const toml::node& n, const std::string& path) {
  kafka::Template t = read_template(r, n, path, Direction::ToMqtt);
  if (t.constant() && !mqtt::valid_topic_name(t.literal())) {
    r.fail(n, path + " = " + quoted(t.text()) +
                  " is not an MQTT topic name (no wildcards, not empty)");
  }
  return t.text();
}

const std::vector<Field<KafkaConsumeRule>>& consume_fields() {
  using C = KafkaConsumeRule;
  static const std::vector<Field<C>> fields = {
      field("topics", &C::topics, read_topics),
      field("group", &C::group, non_empty_string),
      one_of_field("offset_reset", &C::offset_reset, kOffsetResets),
      field("mqtt_topic", &C::mqtt_topic, read_mqtt_topic),
      integer_field("qos", &C::qos, 0, 2),
      bool_field("retain", &C::retain),
      bool_field("user_properties", &C::user_properties),
      one_of_field("codec", &C::codec, kCodecs),
  };
  return fields;
}

std::vector<KafkaConsumeRule> read_consume_rules(const Reader& r, const toml::node& node,
                                                 const std::string& path) {
  std::vector<KafkaConsumeRule> rules;
  r.table_array(node, path, [&](const toml::table& table, const std::string& rule_path) {
    KafkaConsumeRule rule;
    rule.line.value = line_of(table.source());
    r.read_table<KafkaConsumeRule>(rule, table, rule_path, consume_fields());
    if (!table.contains("topics")) {
      r.fail(rule.line.value, rule_path + " needs topics, e.g. topics = [\"commands\"]");
    }
    rules.push_back(std::move(rule));
  });
  return rules;
}

// --- [kafka] ----------------------------------------------------------------------------------

// A table of librdkafka properties; each is tried on a scratch configuration so that a typo
// fails at start with its line, not when the bridge connects.
PropertyList read_properties(const Reader& r, const toml::node& node, const std::string& path) {
  const toml::table& table = r.table(node, path);
  std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> scratch(rd_kafka_conf_new(),
                                                                             rd_kafka_conf_destroy);
  PropertyList out;
  for (auto&& [key, value] : table) {
    std::string name(key.str());
    std::string text;
    if (const auto* s = value.as_string()) {
      text = s->get();
    } else if (const auto* i = value.as_integer()) {
      text = std::to_string(i->get());
    } else if (const auto* b = value.as_boolean()) {
      text = b->get() ? "true" : "false";
    } else if (const auto* f = value.as_floating_point()) {
      text = std::to_string(f->get());
    } else if (value.is_table()) {
      r.fail(value, path + "." + name +
                        " is a table: quote property names that contain dots, as "
                        "in \"linger.ms\" = 5");
    } else {
      r.fail(value, path + "." + name + " must be a string, number or boolean");
    }
    char error[256];
    if (rd_kafka_conf_set(scratch.get(), name.c_str(), text.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      r.fail(line_of(key.source()), path + "." + name + ": " + error);
    }
    out.emplace_back(std::move(name), std::move(text));
  }
  return out;
}

// Kept without trailing slashes: the client appends its paths.
std::string read_registry_url(const Reader& r, const toml::node& n, const std::string& path) {
  std::string url = r.http_url(n, path);
  while (url.ends_with("/"))
    url.pop_back();
  return url;
}

const std::vector<Field<KafkaSettings>>& kafka_fields() {
  using K = KafkaSettings;
  static const std::vector<Field<K>> fields = {
      field("bootstrap", &K::bootstrap, non_empty_string),
      bool_field("mock", &K::mock),
      integer_field("mock_brokers", &K::mock_brokers, 1, 16),
      field("schema_registry", &K::schema_registry, read_registry_url),
      integer_field("schema_registry_timeout_ms", &K::schema_registry_timeout_ms, 100, 600000),
      integer_field("buffer_max_messages", &K::buffer_max_messages, 1, max_of<uint32_t>()),
      integer_field("buffer_max_bytes", &K::buffer_max_bytes, 1024),
      field("properties", &K::properties, read_properties),
      field("producer_properties", &K::producer_properties, read_properties),
      field("consumer_properties", &K::consumer_properties, read_properties),
      field("produce", &K::produce, read_produce_rules),
      field("consume", &K::consume, read_consume_rules),
  };
  return fields;
}

}  // namespace

Field<Config> kafka_section() {
  return section("kafka", &Config::kafka, kafka_fields());
}

void check_kafka(const Reader& r, const KafkaSettings& k) {
  if (!k.enabled()) return;
  int first_rule = !k.produce.empty() ? k.produce.front().line.value : k.consume.front().line.value;
  if (k.bootstrap.empty() && !k.mock) {
    r.fail(first_rule,
           "Kafka rules need kafka.bootstrap = \"host:9092\" (or kafka.mock = true to try them "
           "against a built-in mock cluster)");
  }
  for (size_t i = 0; i < k.consume.size(); ++i) {
    if (k.consume[i].codec == "avro-confluent" && k.schema_registry.empty()) {
      r.fail(k.consume[i].line.value, "kafka.consume[" + std::to_string(i) +
                                          "] uses codec \"avro-confluent\": set "
                                          "kafka.schema_registry to the registry's URL");
    }
  }
}

}  // namespace starling::config
