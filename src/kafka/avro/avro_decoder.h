// Kafka record values in Avro, framed by the Confluent Schema Registry wire format (byte 0 is
// the magic 0x00, bytes 1-4 the big-endian schema id, the rest the Avro binary body), decoded
// to JSON text for MQTT. Depends on libavro (avro-c) only, so the fuzzers can build it alone;
// fetching schemas by id is schema_registry.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace starling::kafka {

// Splits the Confluent framing. Returns false (and a reason) when payload is shorter than 5
// bytes or the magic byte is not 0.
bool parse_confluent_frame(std::string_view payload, int32_t& schema_id, std::string_view& body,
                           std::string& error);

// A parsed Avro schema, ready to decode bodies; immutable and safe to use from several threads
// at once (a decode touches only its own locals, never libavro).
//
// libavro parses the schema; bodies are decoded here, not by avro_value_read and
// avro_value_to_json, because libavro 1.11 trusts its input (a length prefix goes to malloc
// before the bytes are checked: 2^60 aborts under ASan, and a size malloc grants leaks when
// the read then fails, as does any truncated string or bytes; an array of nulls may claim 2^62
// items and spin) and its JSON writer cuts bytes, fixed, strings and map keys at the first
// 0x00 byte.
class AvroSchema {
 public:
  // Nesting of values in one body (each record, array, map or union level counts once).
  static constexpr int kMaxDepth = 128;
  // Array items that take no bytes (null, empty record) per body; items that take bytes are
  // bounded by the body's size.
  static constexpr uint64_t kMaxEmptyItems = 1 << 16;
  // JSON text per body. A schema with wide records of nulls inside maps turns each body byte
  // into kilobytes; real messages stay far below this.
  static constexpr size_t kMaxJsonSize = size_t{64} << 20;

  // Null and a reason when the text is not an Avro schema libavro can parse, or no body could
  // ever decode with it (a record containing itself other than through a union, array or map;
  // a negative fixed size; enum symbols that are not UTF-8), or it nests over 256 levels.
  // libavro leaks a little on some invalid schemas (a named type defined twice); a registry
  // validates schemas when they are registered, so it never serves one.
  static std::shared_ptr<const AvroSchema> parse(std::string_view schema_json, std::string& error);

  // Decodes one Avro binary body to one-line JSON in the shape avro_value_to_json gives:
  // {"f": 1, "g": [1, 2]}, a union's null branch as null and other branches as
  // {"type-name": value} (short name for named types), bytes and fixed as strings of
  // U+0000..U+00FF, ASCII only (\u00E9, surrogate pairs above U+FFFF). Unlike libavro: a 0x00
  // byte is kept (\u0000), float and double are written in their shortest exact form (1.1, not
  // 1.1000000000000001; always with a "." or an exponent), and NaN and infinities, which JSON
  // lacks, are the strings "NaN", "Infinity", "-Infinity" (as Java's Avro JSON encoder writes).
  // False and a reason (with the byte offset) when the body does not decode: truncated, bytes
  // left after the value, a varint over 10 bytes, a negative or too large length or block
  // count, an int out of range, a boolean other than 0 or 1, an enum index or union branch out
  // of range, a string or map key that is not UTF-8, a map key given twice, or the limits
  // above. json is unspecified after a failure.
  bool to_json(std::string_view body, std::string& json, std::string& error) const;

  ~AvroSchema();
  AvroSchema(const AvroSchema&) = delete;
  AvroSchema& operator=(const AvroSchema&) = delete;

 private:
  struct Impl;
  explicit AvroSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace starling::kafka
