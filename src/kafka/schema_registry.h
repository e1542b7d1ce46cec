// Avro schemas by id from a Confluent Schema Registry (GET /schemas/ids/{id}), cached for the
// process lifetime, and the decoder that puts framing, registry and Avro together.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kafka/avro/avro_decoder.h"

namespace starling::kafka {

class SchemaRegistry {
 public:
  // url like "http://127.0.0.1:8081" (a trailing slash is dropped); timeout per HTTP request.
  // A failed lookup is answered from memory for retry_backoff, then tried again.
  SchemaRegistry(std::string url, std::chrono::milliseconds timeout,
                 std::chrono::milliseconds retry_backoff = std::chrono::seconds(5));
  ~SchemaRegistry();
  SchemaRegistry(const SchemaRegistry&) = delete;
  SchemaRegistry& operator=(const SchemaRegistry&) = delete;

  // The schema with this id: from the cache, else GET {url}/schemas/ids/{id} and parse its
  // "schema" field. Null and a reason when the registry cannot be reached, answers other than
  // 200, the schema is not Avro (schemaType PROTOBUF or JSON), has references, or does not
  // parse. Successes are kept for the process lifetime (schema ids are immutable); a failure is
  // kept for retry_backoff, so an outage heals without a request per message. Thread-safe: one
  // fetch per id at a time, callers for an id being fetched wait for it.
  std::shared_ptr<const AvroSchema> get(int32_t id, std::string& error);

  // HTTP requests made (for metrics and tests).
  uint64_t fetches() const { return fetches_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::shared_ptr<const AvroSchema> schema;
    std::string error;
    std::chrono::steady_clock::time_point retry_at;
    bool fetching = false;
  };

  std::shared_ptr<const AvroSchema> fetch(int32_t id, std::string& error);

  const std::string url_;
  const std::chrono::milliseconds timeout_;
  const std::chrono::milliseconds retry_backoff_;
  std::atomic<uint64_t> fetches_{0};
  std::mutex mutex_;
  std::condition_variable fetched_;
  std::unordered_map<int32_t, Entry> entries_;
};

// Confluent-framed Avro to JSON text: frame, schema from the registry, decode.
class AvroConfluentDecoder {
 public:
  explicit AvroConfluentDecoder(SchemaRegistry& registry) : registry_(registry) {}
  // False and a reason when the frame, the schema lookup or the body fails.
  bool decode(std::string_view payload, std::string& json, std::string& error);

 private:
  SchemaRegistry& registry_;
};

}  // namespace starling::kafka
