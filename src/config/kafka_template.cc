#include "config/kafka_template.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace starling::kafka {

namespace {

// The n-th '/'-separated level of topic, or empty when there are fewer levels.
std::string_view topic_level(std::string_view topic, uint32_t n) {
  size_t start = 0;
  for (uint32_t i = 0; i < n; ++i) {
    size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) return {};
    start = slash + 1;
  }
  size_t end = topic.find('/', start);
  return topic.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

}  // namespace

Template Template::parse(std::string_view text, Direction direction) {
  Template t;
  t.text_ = std::string(text);
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) t.parts_.push_back(Part{Kind::Literal, std::move(literal), 0});
    literal.clear();
  };
  const bool to_kafka = direction == Direction::ToKafka;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      throw std::invalid_argument("a lone '}' (write '}}' for a literal brace)");
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
      continue;
    }
    size_t close = text.find('}', i);
    if (close == std::string_view::npos) throw std::invalid_argument("a '{' without its '}'");
    std::string_view name = text.substr(i + 1, close - i - 1);
    i = close;
    Part part;
    if (to_kafka && name == "topic") {
      part.kind = Kind::Topic;
    } else if (to_kafka && name.starts_with("topic[") && name.ends_with("]")) {
      std::string_view digits = name.substr(6, name.size() - 7);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), part.level);
      if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
          part.level > 65535) {
        throw std::invalid_argument("{" + std::string(name) +
                                    "}: the level must be a number from 0, as in {topic[1]}");
      }
      part.kind = Kind::TopicLevel;
    } else if (to_kafka && name == "clientid") {
      part.kind = Kind::ClientId;
    } else if (to_kafka && name == "username") {
      part.kind = Kind::Username;
    } else if (!to_kafka && name == "kafka_topic") {
      part.kind = Kind::KafkaTopic;
    } else if (!to_kafka && name == "key") {
      part.kind = Kind::Key;
    } else if (!to_kafka && name == "partition") {
      part.kind = Kind::Partition;
    } else if (!to_kafka && name.starts_with("header.") && name.size() > 7) {
      part.kind = Kind::Header;
      part.text = std::string(name.substr(7));
    } else {
      throw std::invalid_argument("unknown placeholder {" + std::string(name) + "}; " +
                                  (to_kafka
                                       ? "use {topic}, {topic[N]}, {clientid} or {username}"
                                       : "use {kafka_topic}, {key}, {partition} or {header.NAME}"));
    }
    flush_literal();
    t.parts_.push_back(std::move(part));
  }
  flush_literal();
  return t;
}

bool Template::uses_key() const {
  for (const Part& p : parts_)
    if (p.kind == Kind::Key) return true;
  return false;
}

std::string Template::expand(const TemplateValues& v) const {
  std::string out;
  for (const Part& p : parts_) {
    switch (p.kind) {
      case Kind::Literal:
        out += p.text;
        break;
      case Kind::Topic:
        out += v.topic;
        break;
      case Kind::TopicLevel:
        out += topic_level(v.topic, p.level);
        break;
      case Kind::ClientId:
        out += v.client_id;
        break;
      case Kind::Username:
        out += v.username;
        break;
      case Kind::KafkaTopic:
        out += v.kafka_topic;
        break;
      case Kind::Key:
        out += v.key;
        break;
      case Kind::Partition:
        out += std::to_string(v.partition);
        break;
      case Kind::Header:
        if (v.headers) {
          for (const auto& [name, value] : *v.headers) {
            if (name == p.text) {
              out += value;
              break;
            }
          }
        }
        break;
    }
  }
  return out;
}

std::string kafka_topic_name(std::string_view expanded) {
  std::string out(expanded.substr(0, 249));
  // "", "." and ".." are the names Kafka refuses that the mapping below would leave.
  if (out.empty() || out == "." || out == ".." || out == "/" || out == "//") {
    return std::string(std::max<size_t>(out.size(), 1), '_');
  }
  for (char& c : out) {
    if (c == '/') {
      c = '.';
    } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-')) {
      c = '_';
    }
  }
  return out;
}

bool valid_kafka_topic(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace starling::kafka
