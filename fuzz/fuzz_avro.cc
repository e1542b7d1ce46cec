// libFuzzer target for the Kafka payload codec: Confluent framing and Avro bodies to JSON. The
// input is split as a Confluent frame and its body decoded with a rich fixed schema (nested and
// recursive records, arrays, maps, unions, every primitive, enum, fixed); the whole input is
// also decoded with that schema and with a union of primitives and containers. Framing must
// agree with the bytes, and every successful decode must be ASCII-only, valid JSON, within the
// size limit and the same when repeated. Anything else traps.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kafka/avro/avro_decoder.h"

namespace {

using starling::kafka::AvroSchema;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::string_view kEventSchema = R"({
  "type": "record", "name": "Event", "namespace": "fuzz",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "count", "type": "int"},
    {"name": "name", "type": "string"},
    {"name": "raw", "type": "bytes"},
    {"name": "ok", "type": "boolean"},
    {"name": "ratio", "type": "float"},
    {"name": "value", "type": "double"},
    {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "MID", "HIGH"]}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
    {"name": "origin", "type": {"type": "record", "name": "Origin", "fields": [
      {"name": "host", "type": "string"},
      {"name": "port", "type": ["null", "int"]}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "gaps", "type": {"type": "array", "items": "null"}},
    {"name": "attrs", "type": {"type": "map", "values": ["null", "long", "string", "Origin"]}},
    {"name": "next", "type": ["null", "Event"]}
  ]})";

constexpr std::string_view kAnySchema = R"([
  "null", "boolean", "int", "long", "float", "double", "bytes", "string",
  {"type": "array", "items": ["null", "double", "string"]},
  {"type": "map", "values": {"type": "array", "items": "long"}},
  {"type": "fixed", "name": "Two", "size": 2},
  {"type": "enum", "name": "One", "symbols": ["ONLY"]}
])";

std::shared_ptr<const AvroSchema> must_parse(std::string_view text) {
  std::string error;
  auto schema = AvroSchema::parse(text, error);
  check(schema != nullptr);
  return schema;
}

// A strict JSON reader (RFC 8259 grammar) that only says whether s is one JSON value.
class JsonChecker {
 public:
  explicit JsonChecker(std::string_view s) : s_(s) {}
  bool valid() { return value(0) && i_ == s_.size(); }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  bool lit(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
      ++i_;
    return i_ > start;
  }
  bool number() {
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.' && (++i_, !digits())) return false;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {
    if (!lit("\"")) return false;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (i_ == s_.size()) return false;
      const char e = s_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k, ++i_) {
          if (i_ == s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return false;
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    return false;
  }
  bool value(int depth) {
    if (depth > 1000) return false;
    ws();
    if (i_ == s_.size()) return false;
    bool ok;
    switch (s_[i_]) {
      case '{':
      case '[': {
        const char close = s_[i_] == '{' ? '}' : ']';
        ++i_;
        ws();
        if (i_ < s_.size() && s_[i_] == close) {
          ++i_;
          ok = true;
          break;
        }
        for (;;) {
          if (close == '}') {
            ws();
            if (!string()) return false;
            ws();
            if (!lit(":")) return false;
          }
          if (!value(depth + 1)) return false;
          ws();
          if (lit(",")) continue;
          ok = lit(std::string_view(&close, 1));
          break;
        }
        break;
      }
      case '"':
        ok = string();
        break;
      case 't':
        ok = lit("true");
        break;
      case 'f':
        ok = lit("false");
        break;
      case 'n':
        ok = lit("null");
        break;
      default:
        ok = number();
    }
    ws();
    return ok;
  }

  std::string_view s_;
  size_t i_ = 0;
};

void decode(const AvroSchema& schema, std::string_view body) {
  std::string json, error;
  if (!schema.to_json(body, json, error)) {
    check(!error.empty());
    return;
  }
  check(!json.empty() && json.size() <= AvroSchema::kMaxJsonSize + body.size() * 6 + 64);
  for (char c : json)
    check(static_cast<unsigned char>(c) < 0x80);
  check(JsonChecker(json).valid());
  std::string again, error2;
  check(schema.to_json(body, again, error2) && again == json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto event = must_parse(kEventSchema);
  static const auto any = must_parse(kAnySchema);
  const std::string_view buf(reinterpret_cast<const char*>(data), size);

  int32_t id = -1;
  std::string_view body;
  std::string error;
  const bool framed = starling::kafka::parse_confluent_frame(buf, id, body, error);
  check(framed == (size >= 5 && data[0] == 0));
  if (framed) {
    check(body.data() == buf.data() + 5 && body.size() == size - 5);
    check(static_cast<uint32_t>(id) == (uint32_t{data[1]} << 24 | uint32_t{data[2]} << 16 |
                                        uint32_t{data[3]} << 8 | uint32_t{data[4]}));
    decode(*event, body);
  } else {
    check(!error.empty());
  }
  decode(*event, buf);
  decode(*any, buf);
  return 0;
}
