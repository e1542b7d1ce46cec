// Templates of the Kafka rules: a Kafka topic or key made from an MQTT message
// ("sensors.{topic[1]}", "{clientid}") and an MQTT topic made from a Kafka record
// ("devices/{key}/cmd", "{kafka_topic}/{header.site}"). Parsed once at config load, so a typo
// is a config error with its line; expanded per message without parsing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::kafka {

// The values a template may draw from; which ones exist depends on the direction.
struct TemplateValues {
  // MQTT to Kafka.
  std::string_view topic;
  std::string_view client_id;
  std::string_view username;
  // Kafka to MQTT.
  std::string_view kafka_topic;
  std::string_view key;
  int32_t partition = -1;
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;
};

class Template {
 public:
  enum class Direction { ToKafka, ToMqtt };

  Template() = default;
  // Throws std::invalid_argument naming the problem ("unknown placeholder {clientd}").
  // ToKafka allows {topic}, {topic[N]} (level N, from 0), {clientid}, {username};
  // ToMqtt allows {kafka_topic}, {key}, {partition}, {header.NAME}. "{{" and "}}" are literal
  // braces.
  static Template parse(std::string_view text, Direction direction);

  std::string expand(const TemplateValues& values) const;
  // No placeholders: literal() is the whole result.
  bool constant() const { return parts_.size() <= 1 && (parts_.empty() || parts_[0].literal()); }
  // The result of a constant template ("{{" and "}}" unescaped).
  std::string literal() const { return parts_.empty() ? std::string() : parts_[0].text; }
  const std::string& text() const { return text_; }  // as written in the config
  bool uses_key() const;

 private:
  enum class Kind : uint8_t {
    Literal,
    Topic,
    TopicLevel,
    ClientId,
    Username,
    KafkaTopic,
    Key,
    Partition,
    Header
  };
  struct Part {
    Kind kind = Kind::Literal;
    std::string text;  // the literal, or the header name
    uint32_t level = 0;
    bool literal() const { return kind == Kind::Literal; }
  };
  std::string text_;
  std::vector<Part> parts_;
};

// A Kafka topic name from an expanded template: characters Kafka refuses become '_' and MQTT's
// level separator '/' becomes '.', so "{topic}" of "site/a/temp" is "site.a.temp".
std::string kafka_topic_name(std::string_view expanded);
// Kafka's own rule: 1..249 characters of [A-Za-z0-9._-], not "." or "..".
bool valid_kafka_topic(std::string_view name);

}  // namespace starling::kafka
