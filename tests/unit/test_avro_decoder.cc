// Kafka payload codec: Confluent framing, Avro bodies to JSON (including hostile bodies that
// libavro alone would mishandle), and the schema registry client against a loopback HTTP server
// answering canned responses.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka/avro/avro_decoder.h"
#include "kafka/schema_registry.h"

namespace starling::kafka {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// Avro binary encoding, written out by hand.
std::string zz(int64_t v) {
  uint64_t n = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  std::string out;
  while (n & ~uint64_t{0x7F}) {
    out += static_cast<char>((n & 0x7F) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  return out;
}

std::string str(std::string_view s) {
  return zz(static_cast<int64_t>(s.size())) + std::string(s);
}

std::string dbl(double d) {
  char b[8];
  std::memcpy(b, &d, 8);
  return std::string(b, 8);
}

std::string frame(int32_t id, std::string_view body) {
  const auto u = static_cast<uint32_t>(id);
  std::string out(1, '\0');
  for (int shift = 24; shift >= 0; shift -= 8)
    out += static_cast<char>((u >> shift) & 0xFF);
  return out + std::string(body);
}

constexpr std::string_view kReadingSchema = R"({
  "type": "record", "name": "Reading", "namespace": "com.example",
  "fields": [
    {"name": "name", "type": "string"},
    {"name": "count", "type": "int"},
    {"name": "ts", "type": "long"},
    {"name": "value", "type": "double"},
    {"name": "ok", "type": "boolean"},
    {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "MID", "HIGH"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "int"}},
    {"name": "note", "type": ["null", "string"]}
  ]})";

std::string reading_body(std::string_view note_branch) {
  return str("abc") + zz(-2) + zz(1000000000000) + dbl(1.5) + "\x01" + zz(1) + zz(2) + str("x") +
         str("yz") + zz(0) + zz(1) + str("a") + zz(1) + zz(0) + std::string(note_branch);
}

const std::string kReadingJson =
    R"({"name": "abc", "count": -2, "ts": 1000000000000, "value": 1.5, "ok": true, )"
    R"("level": "MID", "tags": ["x", "yz"], "attrs": {"a": 1}, "note": {"string": "hi"}})";

std::shared_ptr<const AvroSchema> parse_ok(std::string_view text) {
  std::string error;
  auto schema = AvroSchema::parse(text, error);
  EXPECT_TRUE(schema) << error;
  return schema;
}

// The decoded JSON, or "error: ..." when the body does not decode.
std::string decode(const AvroSchema& schema, std::string_view body) {
  std::string json, error;
  if (!schema.to_json(body, json, error)) {
    EXPECT_FALSE(error.empty());
    return "error: " + error;
  }
  return json;
}

bool is_error(const std::string& s) {
  return s.starts_with("error: ");
}

TEST(ConfluentFrame, Parse) {
  int32_t id = 0;
  std::string_view body;
  std::string error;
  for (std::string_view short_payload : {std::string_view(), std::string_view("\0\0\0\0", 4)}) {
    EXPECT_FALSE(parse_confluent_frame(short_payload, id, body, error));
    EXPECT_NE(error.find("too short"), std::string::npos) << error;
  }
  error.clear();
  EXPECT_FALSE(parse_confluent_frame(std::string_view("\x01\0\0\0\x07xy", 7), id, body, error));
  EXPECT_NE(error.find("magic byte 1"), std::string::npos) << error;

  const std::string good = frame(0x01020304, "body");
  ASSERT_TRUE(parse_confluent_frame(good, id, body, error));
  EXPECT_EQ(id, 0x01020304);
  EXPECT_EQ(body, "body");
  ASSERT_TRUE(parse_confluent_frame(frame(-1, ""), id, body, error));
  EXPECT_EQ(id, -1);
  EXPECT_TRUE(body.empty());
}

TEST(AvroSchema, ParseErrors) {
  for (std::string_view bad : {
           std::string_view(""),
           std::string_view("not json"),
           std::string_view(R"({"type": "nope"})"),
           std::string_view(R"({"type": "record", "name": "R"})"),
           std::string_view(R"({"type": "record", "name": "R", "fields": [{"name": "a"}]})"),
           std::string_view(R"({"type": "enum", "name": "E", "symbols": []})"),
           std::string_view(R"({"type": "fixed", "name": "F"})"),
           std::string_view(R"({"type": "array"})"),
           std::string_view(R"([])"),
           std::string_view(
               R"({"type": "record", "name": "R", "fields": [{"name": "x", "type": "Other"}]})"),
       }) {
    std::string error;
    EXPECT_EQ(AvroSchema::parse(bad, error), nullptr) << bad;
    EXPECT_NE(error.find("invalid Avro schema"), std::string::npos) << bad << ": " << error;
  }
  // Parsed by libavro but not decodable: no body of a self-containing record ever ends (and
  // libavro's generic value would recurse without end), a negative fixed has no bytes.
  for (std::string_view bad : {
           std::string_view(
               R"({"type": "record", "name": "A", "fields": [{"name": "a", "type": "A"}]})"),
           std::string_view(R"({"type": "record", "name": "A", "fields": [
               {"name": "b", "type": {"type": "record", "name": "B", "fields": [
                   {"name": "a", "type": "A"}]}}]})"),
           std::string_view(R"({"type": "fixed", "name": "F", "size": -1})"),
       }) {
    std::string error;
    EXPECT_EQ(AvroSchema::parse(bad, error), nullptr) << bad;
    EXPECT_NE(error.find("unsupported Avro schema"), std::string::npos) << bad << ": " << error;
  }
}

TEST(AvroSchema, DecodesRecord) {
  auto schema = parse_ok(kReadingSchema);
  ASSERT_TRUE(schema);
  EXPECT_EQ(decode(*schema, reading_body(zz(1) + str("hi"))), kReadingJson);
  // The null branch of a union is plain null; blocks with a negative count carry a byte size.
  std::string body = str("") + zz(0) + zz(0) + dbl(-0.25) + std::string(1, '\0') + zz(0) + zz(-2) +
                     zz(4) + str("p") + str("q") + zz(0) + zz(0) + zz(0);
  EXPECT_EQ(decode(*schema, body),
            R"({"name": "", "count": 0, "ts": 0, "value": -0.25, "ok": false, "level": "LOW", )"
            R"("tags": ["p", "q"], "attrs": {}, "note": null})");
}

TEST(AvroSchema, DecodesPrimitivesAndNames) {
  auto string_schema = parse_ok(R"("string")");
  ASSERT_TRUE(string_schema);
  EXPECT_EQ(decode(*string_schema, str("h\xc3\xa9llo \xf0\x9f\x98\x80")),
            R"("h\u00E9llo \uD83D\uDE00")");
  EXPECT_EQ(decode(*string_schema, str(std::string("\"\\/\n\t\x01\x7f\0!", 9))),
            "\"\\\"\\\\/\\n\\t\\u0001\x7f\\u0000!\"");
  // libavro's own writer would give "" for these: it stops at the first 0x00.
  EXPECT_EQ(decode(*parse_ok(R"("bytes")"), str(std::string("\x00\x7f\xff", 3))),
            "\"\\u0000\x7f\\u00FF\"");
  EXPECT_EQ(decode(*parse_ok(R"({"type": "fixed", "name": "F", "size": 2})"), "\0a"s),
            R"("\u0000a")");
  EXPECT_EQ(decode(*parse_ok(R"({"type": "fixed", "name": "F", "size": 0})"), ""), R"("")");
  EXPECT_EQ(decode(*parse_ok(R"("long")"), zz(std::numeric_limits<int64_t>::min())),
            "-9223372036854775808");
  EXPECT_EQ(decode(*parse_ok(R"("int")"), zz(std::numeric_limits<int32_t>::max())), "2147483647");
  EXPECT_EQ(decode(*parse_ok(R"("null")"), ""), "null");
  EXPECT_EQ(decode(*parse_ok(R"("boolean")"), "\x01"), "true");
  EXPECT_EQ(decode(*parse_ok(R"({"type": "record", "name": "E", "fields": []})"), ""), "{}");

  // Reals: the shortest exact form, always with a "." or an exponent.
  auto double_schema = parse_ok(R"("double")");
  ASSERT_TRUE(double_schema);
  const std::pair<double, std::string_view> doubles[] = {
      {0.1, "0.1"},
      {100.0, "100.0"},
      {-0.0, "-0.0"},
      {1e300, "1e300"},
      {1e-5, "1e-5"},
      {123456789012345678.0, "123456789012345680.0"},
      {1e16, "1e16"},
      {std::numeric_limits<double>::quiet_NaN(), R"("NaN")"},
      {std::numeric_limits<double>::infinity(), R"("Infinity")"},
      {-std::numeric_limits<double>::infinity(), R"("-Infinity")"},
  };
  for (const auto& [v, text] : doubles)
    EXPECT_EQ(decode(*double_schema, dbl(v)), text);
  float f = 1.1f;
  std::string fbytes(4, '\0');
  std::memcpy(fbytes.data(), &f, 4);
  EXPECT_EQ(decode(*parse_ok(R"("float")"), fbytes), "1.1");

  // Union branches are keyed by type name (the short name for named types); a recursive list
  // through a union decodes.
  auto list = parse_ok(R"({"type": "record", "name": "Node", "namespace": "n.s", "fields": [
      {"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]})");
  ASSERT_TRUE(list);
  EXPECT_EQ(decode(*list, zz(1) + zz(1) + zz(2) + zz(0)),
            R"({"v": 1, "next": {"Node": {"v": 2, "next": null}}})");
  auto u = parse_ok(R"(["null", "int", {"type": "map", "values": "long"},
      {"type": "array", "items": "bytes"}])");
  ASSERT_TRUE(u);
  EXPECT_EQ(decode(*u, zz(1) + zz(-3)), R"({"int": -3})");
  EXPECT_EQ(decode(*u, zz(2) + zz(2) + str("b") + zz(1) + str("a") + zz(2) + zz(0)),
            R"({"map": {"b": 1, "a": 2}})");
  EXPECT_EQ(decode(*u, zz(3) + zz(0)), R"({"array": []})");
}

TEST(AvroSchema, RejectsTruncatedAndTrailing) {
  auto schema = parse_ok(kReadingSchema);
  ASSERT_TRUE(schema);
  const std::string body = reading_body(zz(1) + str("hi"));
  for (size_t n = 0; n < body.size(); ++n)
    EXPECT_TRUE(is_error(decode(*schema, body.substr(0, n)))) << n;
  const std::string trailing = decode(*schema, body + '\0');
  EXPECT_NE(trailing.find("1 bytes left after the value"), std::string::npos) << trailing;
  // Every single-byte corruption either decodes or is refused; neither crashes or leaks.
  for (size_t i = 0; i < body.size(); ++i) {
    for (int b : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string mutated = body;
      mutated[i] = static_cast<char>(b);
      decode(*schema, mutated);
    }
  }
}

TEST(AvroSchema, RejectsHostileBodies) {
  auto string_schema = parse_ok(R"("string")");
  auto bytes_schema = parse_ok(R"("bytes")");
  auto int_schema = parse_ok(R"("int")");
  auto bool_schema = parse_ok(R"("boolean")");
  auto ints = parse_ok(R"({"type": "array", "items": "int"})");
  auto nulls = parse_ok(R"({"type": "array", "items": "null"})");
  auto map = parse_ok(R"({"type": "map", "values": "null"})");
  auto enum_schema = parse_ok(R"({"type": "enum", "name": "E", "symbols": ["A", "B"]})");
  auto union_schema = parse_ok(R"(["null", "int"])");
  auto fixed4 = parse_ok(R"({"type": "fixed", "name": "F", "size": 4})");
  auto list = parse_ok(R"({"type": "record", "name": "Node", "fields": [
      {"name": "next", "type": ["null", "Node"]}]})");
  ASSERT_TRUE(string_schema && bytes_schema && int_schema && bool_schema && ints && nulls && map &&
              enum_schema && union_schema && fixed4 && list);

  const auto expect_error = [](const AvroSchema& s, const std::string& body, std::string_view why) {
    const std::string out = decode(s, body);
    EXPECT_TRUE(is_error(out)) << out;
    EXPECT_NE(out.find(why), std::string::npos) << out;
  };
  // Lengths: libavro would pass them to malloc before finding the body too short.
  expect_error(*string_schema, zz(int64_t{1} << 60) + "abc", "at byte 0: string length");
  expect_error(*string_schema, zz(-1), "negative string length");
  expect_error(*bytes_schema, zz(std::numeric_limits<int64_t>::max()), "exceeds");
  expect_error(*bytes_schema, zz(-5) + "abcdef", "negative bytes length");
  expect_error(*string_schema, str("a\xff"), "not UTF-8");
  expect_error(*string_schema, str("\xed\xa0\x80"), "not UTF-8");      // a surrogate
  expect_error(*string_schema, str("\xc0\x80"), "not UTF-8");          // overlong U+0000
  expect_error(*string_schema, str("\xf4\x90\x80\x80"), "not UTF-8");  // past U+10FFFF
  expect_error(*string_schema, str("\xe2\x82"), "not UTF-8");          // cut short
  expect_error(*fixed4, "abc", "truncated");
  // Varints and ranges.
  expect_error(*int_schema, std::string(10, '\x80') + '\x01', "longer than 10 bytes");
  expect_error(*int_schema, zz(int64_t{1} << 31), "out of range");
  expect_error(*bool_schema, "\x02", "not 0 or 1");
  expect_error(*enum_schema, zz(2), "enum index 2 out of range");
  expect_error(*enum_schema, zz(-1), "out of range");
  expect_error(*union_schema, zz(2), "union branch 2 out of range");
  // Block counts: items that take bytes are bounded by the bytes left, items that take none
  // (nulls) by a per-body budget, which several blocks share.
  expect_error(*ints, zz(int64_t{1} << 60) + zz(1), "exceeds");
  expect_error(*ints, zz(std::numeric_limits<int64_t>::min()), "out of range");
  expect_error(*ints, zz(-1) + zz(-1) + zz(1) + zz(0), "negative block length");
  expect_error(*nulls, zz(int64_t{1} << 62) + zz(0), "take no bytes");
  expect_error(*map, zz(int64_t{1} << 40) + str("k") + zz(0), "exceeds");
  expect_error(*map, zz(1) + str("\xc0\x80") + zz(0), "map key is not UTF-8");
  expect_error(*map, zz(2) + str("k") + str("k") + zz(0), "at byte 3: map key given twice");
  EXPECT_EQ(decode(*map, zz(1) + str("k") + zz(1) + str("j") + zz(0)), R"({"k": null, "j": null})");
  const int64_t budget = static_cast<int64_t>(AvroSchema::kMaxEmptyItems);
  EXPECT_EQ(decode(*nulls, zz(budget) + zz(0)).size(), static_cast<size_t>(6 * budget));
  expect_error(*nulls, zz(budget) + zz(1) + zz(0), "take no bytes");
  // Nesting: a recursive schema lets a body nest as deep as it has bytes.
  const auto nested = [](int levels) {
    std::string body;
    for (int i = 0; i < levels; ++i)
      body += zz(1);
    return body + zz(0);
  };
  EXPECT_FALSE(is_error(decode(*list, nested(AvroSchema::kMaxDepth / 2 - 2))));
  expect_error(*list, nested(AvroSchema::kMaxDepth / 2), "nested deeper");
  expect_error(*list, nested(100000), "nested deeper");
}

TEST(AvroSchema, BoundsTheJsonSize) {
  // Every map entry takes 4 bytes and writes a record of 200 nulls, about 5 KiB of JSON: the
  // 128 KiB body below would make 160 MiB.
  std::string fields;
  for (int i = 0; i < 200; ++i) {
    if (i > 0) fields += ", ";
    fields += R"({"name": "field_number_)" + std::to_string(i) + R"(", "type": "null"})";
  }
  auto schema =
      parse_ok(R"({"type": "map", "values": {"type": "record", "name": "Wide", "fields": [)" +
               fields + "]}}");
  ASSERT_TRUE(schema);
  std::string body = zz(32768);
  for (int i = 0; i < 32768; ++i) {
    std::string key(3, 'a');
    key[0] = static_cast<char>('a' + i % 26);
    key[1] = static_cast<char>('a' + i / 26 % 26);
    key[2] = static_cast<char>('a' + i / 676 % 26);
    body += str(key);
  }
  body += zz(0);
  const std::string out = decode(*schema, body);
  EXPECT_NE(out.find("JSON longer than"), std::string::npos) << out.substr(0, 200);
}

TEST(AvroSchema, ConcurrentDecodes) {
  auto schema = parse_ok(kReadingSchema);
  ASSERT_TRUE(schema);
  const std::string good = reading_body(zz(1) + str("hi"));
  const std::string bad = good.substr(0, good.size() - 1);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::string json, error;
        if (!schema->to_json(good, json, error) || json != kReadingJson) ++mismatches;
        if (schema->to_json(bad, json, error)) ++mismatches;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// A loopback HTTP/1.1 server answering GETs from a table of canned responses, one connection
// at a time.
class FakeRegistry {
 public:
  FakeRegistry() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(fd_, 16) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      ADD_FAILURE() << "cannot listen: " << std::strerror(errno);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }

  ~FakeRegistry() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

  void answer(const std::string& path, int status, std::string body) {
    std::lock_guard lock(mutex_);
    answers_[path] = {status, std::move(body)};
  }

  void answer_schema(int32_t id, std::string_view schema) {
    answer("/schemas/ids/" + std::to_string(id), 200,
           nlohmann::json{{"schema", std::string(schema)}}.dump());
  }

  void set_delay(std::chrono::milliseconds d) { delay_ms_ = static_cast<int>(d.count()); }
  void set_hang(bool hang) { hang_ = hang; }
  int requests() const { return requests_.load(); }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      serve(c);
      close(c);
    }
  }

  void serve(int c) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (stop_ || poll(&p, 1, 1000) <= 0) return;
      const ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    const size_t start = request.find(' ') + 1;
    const std::string path = request.substr(start, request.find(' ', start) - start);
    while (hang_ && !stop_)
      std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
    std::pair<int, std::string> a{404, R"({"error_code": 40403, "message": "Schema not found"})"};
    {
      std::lock_guard lock(mutex_);
      if (auto it = answers_.find(path); it != answers_.end()) a = it->second;
    }
    const std::string response = "HTTP/1.1 " + std::to_string(a.first) +
                                 " X\r\nContent-Type: application/json\r\nContent-Length: " +
                                 std::to_string(a.second.size()) + "\r\nConnection: close\r\n\r\n" +
                                 a.second;
    size_t off = 0;
    while (off < response.size()) {
      const ssize_t n = send(c, response.data() + off, response.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hang_{false};
  std::atomic<int> delay_ms_{0};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::map<std::string, std::pair<int, std::string>> answers_;
};

TEST(SchemaRegistry, FetchesOnceAndCaches) {
  FakeRegistry server;
  server.answer_schema(7, kReadingSchema);
  SchemaRegistry registry(server.url(), 2s);
  std::string error;
  auto first = registry.get(7, error);
  ASSERT_TRUE(first) << error;
  auto second = registry.get(7, error);
  EXPECT_EQ(first, second);
  EXPECT_EQ(registry.fetches(), 1u);
  EXPECT_EQ(server.requests(), 1);
  std::string json;
  ASSERT_TRUE(second->to_json(reading_body(zz(1) + str("hi")), json, error)) << error;
  EXPECT_EQ(json, kReadingJson);
}

TEST(SchemaRegistry, FailureIsKeptForTheBackoffThenRetried) {
  FakeRegistry server;
  SchemaRegistry registry(server.url(), 2s, 300ms);
  std::string error;
  EXPECT_EQ(registry.get(3, error), nullptr);
  EXPECT_NE(error.find("GET /schemas/ids/3: HTTP 404: Schema not found"), std::string::npos)
      << error;
  error.clear();
  EXPECT_EQ(registry.get(3, error), nullptr);
  EXPECT_NE(error.find("HTTP 404"), std::string::npos) << error;
  EXPECT_EQ(registry.fetches(), 1u);
  server.answer_schema(3, R"("string")");
  std::this_thread::sleep_for(350ms);
  EXPECT_TRUE(registry.get(3, error)) << error;
  EXPECT_EQ(registry.fetches(), 2u);
  error.clear();
  EXPECT_EQ(registry.get(-1, error), nullptr);
  EXPECT_NE(error.find("negative"), std::string::npos) << error;
  EXPECT_EQ(registry.fetches(), 2u);
}

TEST(SchemaRegistry, BadAnswers) {
  FakeRegistry server;
  server.answer("/schemas/ids/1", 200, "{not json");
  server.answer("/schemas/ids/2", 200, R"({"id": 2})");
  server.answer_schema(3, R"({"type": "nope"})");
  server.answer("/schemas/ids/4", 200, R"({"schemaType": "PROTOBUF", "schema": "syntax = 1;"})");
  server.answer("/schemas/ids/5", 500, "boom");
  server.answer("/schemas/ids/6", 200, std::string(2 << 20, ' '));
  server.answer("/schemas/ids/7", 200,
                R"({"schema": "\"string\"", "references": [{"name": "x", "subject": "s"}]})");
  server.answer("/schemas/ids/8", 301, "");
  SchemaRegistry registry(server.url(), 2s);
  const std::pair<int32_t, std::string_view> cases[] = {
      {1, "not a JSON object"},   {2, "no \"schema\" string"},
      {3, "invalid Avro schema"}, {4, "PROTOBUF is not Avro"},
      {5, "HTTP 500: boom"},      {6, "larger than 1048576"},
      {7, "references"},          {8, "HTTP 301"},
  };
  for (const auto& [id, why] : cases) {
    std::string error;
    EXPECT_EQ(registry.get(id, error), nullptr) << id;
    EXPECT_NE(error.find(why), std::string::npos) << id << ": " << error;
  }
}

TEST(SchemaRegistry, UnreachableAndTimeout) {
  // A port that was just free: nothing listens there.
  int port;
  {
    FakeRegistry closed;
    port = std::stoi(closed.url().substr(17));
  }
  SchemaRegistry unreachable("http://127.0.0.1:" + std::to_string(port), 2s);
  std::string error;
  EXPECT_EQ(unreachable.get(1, error), nullptr);
  EXPECT_NE(error.find("GET /schemas/ids/1: "), std::string::npos) << error;

  FakeRegistry server;
  server.set_hang(true);
  SchemaRegistry slow(server.url(), 200ms);
  const auto start = std::chrono::steady_clock::now();
  error.clear();
  EXPECT_EQ(slow.get(1, error), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_NE(error.find("timed out"), std::string::npos) << error;
  server.set_hang(false);
}

TEST(SchemaRegistry, OneFetchPerIdAtATime) {
  FakeRegistry server;
  server.answer_schema(9, kReadingSchema);
  server.set_delay(200ms);
  SchemaRegistry registry(server.url(), 5s);
  std::vector<std::shared_ptr<const AvroSchema>> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      std::string error;
      got[i] = registry.get(9, error);
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& s : got) {
    ASSERT_TRUE(s);
    EXPECT_EQ(s, got[0]);
  }
  EXPECT_EQ(registry.fetches(), 1u);
  EXPECT_EQ(server.requests(), 1);
}

TEST(AvroConfluentDecoder, Decodes) {
  FakeRegistry server;
  server.answer_schema(42, kReadingSchema);
  SchemaRegistry registry(server.url(), 2s);
  AvroConfluentDecoder decoder(registry);
  std::string json, error;
  ASSERT_TRUE(decoder.decode(frame(42, reading_body(zz(1) + str("hi"))), json, error)) << error;
  EXPECT_EQ(json, kReadingJson);
  EXPECT_FALSE(decoder.decode(std::string_view("\x01\0\0\0\x2a", 5), json, error));
  EXPECT_NE(error.find("magic"), std::string::npos) << error;
  EXPECT_FALSE(decoder.decode(frame(43, ""), json, error));
  EXPECT_NE(error.find("HTTP 404"), std::string::npos) << error;
  EXPECT_FALSE(decoder.decode(frame(42, reading_body(zz(5))), json, error));
  EXPECT_NE(error.find("schema 42: Avro body invalid at byte"), std::string::npos) << error;
  EXPECT_EQ(registry.fetches(), 2u);
}

}  // namespace
}  // namespace starling::kafka
