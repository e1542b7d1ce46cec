// store: records round-trip and reject corrupt bytes; the store writes in ticket order,
// reports durability, scans by prefix, and keeps what it wrote across a reopen.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/records.h"
#include "store/store.h"

namespace starling::store {
namespace {

MessageRecord sample_message() {
  MessageRecord m;
  m.topic = "a/b";
  m.payload = std::string("\0bin\xff", 5);
  m.qos = 2;
  m.retain = true;
  m.expires_at_ms = 1234567890123;
  m.payload_format_indicator = 1;
  m.content_type = "text/plain";
  m.correlation_data = std::string("\x01\x02", 2);
  m.user_properties = {{"k", "v"}, {"k", "v2"}};
  return m;
}

TEST(Records, RoundTrip) {
  QueuedRecord q;
  q.message = sample_message();
  q.qos = 1;
  q.state = QueueState::Released;
  q.packet_id = 65535;
  q.subscription_ids = {1, 268435455};
  q.share_group = "g";
  QueuedRecord q2;
  ASSERT_TRUE(decode(encode(q), q2));
  EXPECT_EQ(q, q2);

  SessionRecord s{3600, 42}, s2;
  ASSERT_TRUE(decode(encode(s), s2));
  EXPECT_EQ(s, s2);

  SubscriptionRecord b{2, true, true, 2, 7}, b2;
  ASSERT_TRUE(decode(encode(b), b2));
  EXPECT_EQ(b, b2);

  WillRecord w{sample_message(), 5, 99}, w2;
  ASSERT_TRUE(decode(encode(w), w2));
  EXPECT_EQ(w, w2);
}

TEST(Records, EveryTruncationIsRejected) {
  QueuedRecord q;
  q.message = sample_message();
  std::string bytes = encode(q);
  for (size_t n = 0; n < bytes.size(); ++n) {
    QueuedRecord out;
    EXPECT_FALSE(decode(std::string_view(bytes).substr(0, n), out)) << n;
  }
  QueuedRecord out;
  EXPECT_FALSE(decode(bytes + "x", out));  // trailing garbage
  bytes[0] = 9;                            // unknown version
  EXPECT_FALSE(decode(bytes, out));
}

TEST(Records, KeysSortPerClientAndParse) {
  EXPECT_LT(queued_key("c", 2), queued_key("c", 10));  // big-endian sequence numbers
  EXPECT_LT(queued_key("c", 255), queued_key("c", 256));
  std::string client;
  uint64_t seq = 0;
  ASSERT_TRUE(parse_queued_key(queued_key("dev/1", 77), client, seq));
  EXPECT_EQ(client, "dev/1");
  EXPECT_EQ(seq, 77u);
  std::string filter;
  ASSERT_TRUE(parse_subscription_key(subscription_key("c", "a/+/#"), client, filter));
  EXPECT_EQ(filter, "a/+/#");
  uint16_t pid = 0;
  ASSERT_TRUE(parse_inbound_key(inbound_key("c", 513), client, pid));
  EXPECT_EQ(pid, 513);
  // A client's prefix does not cover another client whose id extends it.
  EXPECT_NE(queued_key("ab", 1).rfind(client_prefix(Kind::Queued, "a"), 0), 0u);
}

KafkaOutboxRecord sample_outbox() {
  KafkaOutboxRecord k;
  k.rule = 7;
  k.topic = "sensors.a.temp";
  k.key = "dev-1";
  k.value = std::string("\0{\"t\":21}\0\xff", 11);
  k.headers = {{"mqtt.topic", "sensors/a/temp"}, {"mqtt.qos", "1"}, {"dup", "a"}, {"dup", ""}};
  return k;
}

TEST(Records, KafkaOutboxRoundTrip) {
  KafkaOutboxRecord with_key = sample_outbox();
  KafkaOutboxRecord out;
  ASSERT_TRUE(decode(encode(with_key), out));
  EXPECT_EQ(out, with_key);
  EXPECT_EQ(out.value.size(), 11u);

  // No key and an empty key are different records.
  KafkaOutboxRecord no_key = sample_outbox();
  no_key.key.reset();
  no_key.headers.clear();
  KafkaOutboxRecord out2 = sample_outbox();  // decode overwrites every field
  ASSERT_TRUE(decode(encode(no_key), out2));
  EXPECT_EQ(out2, no_key);
  EXPECT_FALSE(out2.key.has_value());
  EXPECT_TRUE(out2.headers.empty());

  KafkaOutboxRecord empty_key = no_key;
  empty_key.key = "";
  KafkaOutboxRecord out3;
  ASSERT_TRUE(decode(encode(empty_key), out3));
  ASSERT_TRUE(out3.key.has_value());
  EXPECT_EQ(*out3.key, "");
  EXPECT_NE(encode(empty_key), encode(no_key));

  // Binary keys, header values and an empty value; the largest rule index.
  KafkaOutboxRecord binary;
  binary.rule = 0xFFFFFFFF;
  binary.topic = "t";
  binary.key = std::string("\0\0", 2);
  binary.headers = {{"h", std::string("\0x\0", 3)}};
  KafkaOutboxRecord out4;
  ASSERT_TRUE(decode(encode(binary), out4));
  EXPECT_EQ(out4, binary);

  EXPECT_EQ(KafkaOutboxRecord{}, [] {
    KafkaOutboxRecord d;
    EXPECT_TRUE(decode(encode(KafkaOutboxRecord{}), d));
    return d;
  }());
}

TEST(Records, KafkaOutboxTruncationIsRejected) {
  for (const KafkaOutboxRecord& k : {sample_outbox(), KafkaOutboxRecord{}}) {
    std::string bytes = encode(k);
    for (size_t n = 0; n < bytes.size(); ++n) {
      KafkaOutboxRecord out;
      EXPECT_FALSE(decode(std::string_view(bytes).substr(0, n), out)) << n;
    }
    KafkaOutboxRecord out;
    EXPECT_FALSE(decode(bytes + "x", out));  // trailing garbage
    std::string wrong_version = bytes;
    wrong_version[0] = 9;
    EXPECT_FALSE(decode(wrong_version, out));
  }
  // A header count larger than what follows.
  KafkaOutboxRecord k = sample_outbox();
  k.headers.clear();
  std::string headerless = encode(k);  // ends with a zero header count
  headerless.back() = 1;
  KafkaOutboxRecord out;
  EXPECT_FALSE(decode(headerless, out));
  // A value length past the end.
  KafkaOutboxRecord small;
  small.topic = "t";
  small.value = "v";
  std::string s = encode(small);
  // version(1) rule(4) topic(4+1) key flag(1) value length(4) value(1) header count(4)
  ASSERT_EQ(s.size(), 20u);
  s[14] = 2;  // value length 1 -> 2
  EXPECT_FALSE(decode(s, out));
}

TEST(Records, KafkaOutboxKeys) {
  // Big-endian sequence numbers: key order is acceptance order, also across a byte boundary.
  EXPECT_LT(kafka_outbox_key(1), kafka_outbox_key(256));
  EXPECT_LT(kafka_outbox_key(255), kafka_outbox_key(256));
  EXPECT_LT(kafka_outbox_key(0), kafka_outbox_key(1));
  EXPECT_LT(kafka_outbox_key(0xFFFFFFFF), kafka_outbox_key(0x100000000));
  EXPECT_LT(kafka_outbox_key(0x7FFFFFFFFFFFFFFF), kafka_outbox_key(0xFFFFFFFFFFFFFFFF));
  EXPECT_EQ(kafka_outbox_key(1).size(), 9u);
  EXPECT_EQ(kafka_outbox_key(1)[0], static_cast<char>(Kind::KafkaOutbox));
  EXPECT_EQ(kafka_outbox_key(0x0102030405060708), std::string("K\x01\x02\x03\x04\x05\x06\x07\x08"));

  for (uint64_t seq : {uint64_t{0}, uint64_t{1}, uint64_t{256}, uint64_t{0xFFFFFFFFFFFFFFFF}}) {
    uint64_t parsed = 12345;
    ASSERT_TRUE(parse_kafka_outbox_key(kafka_outbox_key(seq), parsed)) << seq;
    EXPECT_EQ(parsed, seq);
  }

  uint64_t seq = 0;
  std::string key = kafka_outbox_key(42);
  EXPECT_FALSE(parse_kafka_outbox_key("", seq));
  EXPECT_FALSE(parse_kafka_outbox_key("K", seq));
  EXPECT_FALSE(parse_kafka_outbox_key(key.substr(0, 8), seq));  // one byte short
  EXPECT_FALSE(parse_kafka_outbox_key(key + '\0', seq));        // one byte long
  std::string wrong_kind = key;
  wrong_kind[0] = 'Q';
  EXPECT_FALSE(parse_kafka_outbox_key(wrong_kind, seq));
  // Other kinds' keys, even of the same size.
  EXPECT_FALSE(parse_kafka_outbox_key(session_key("12345678"), seq));
  EXPECT_FALSE(parse_kafka_outbox_key(retained_key("K/topic!"), seq));
  EXPECT_FALSE(parse_kafka_outbox_key(queued_key("", 1), seq));
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("starling-store-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StoreTest, TicketsBecomeDurableInOrderAndSurviveReopen) {
  {
    Store store(dir_.string(), Durability::Batch);
    uint64_t t1 = store.reserve();
    uint64_t t2 = store.reserve();
    Batch b2;
    b2.put("Rb", "2");
    store.commit(t2, std::move(b2));
    // t2 cannot be durable before t1 is committed.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_LT(store.durable(), t2);
    std::atomic<bool> called{false};
    store.when_durable(t2, [&] { called = true; });
    Batch b1;
    b1.put("Ra", "1");
    store.commit(t1, std::move(b1));
    store.flush();
    EXPECT_GE(store.durable(), t2);
    EXPECT_TRUE(called.load());
  }
  Store again(dir_.string(), Durability::Batch);
  std::vector<std::string> keys;
  again.scan("R", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  EXPECT_EQ(keys, (std::vector<std::string>{"Ra", "Rb"}));
}

TEST_F(StoreTest, PrefixDeleteAndScanFrom) {
  Store store(dir_.string(), Durability::Always);
  Batch b;
  for (uint64_t i = 1; i <= 5; ++i)
    b.put(queued_key("c", i), "x");
  b.put(queued_key("c2", 1), "y");
  store.write(std::move(b));
  store.flush();
  std::vector<uint64_t> seqs;
  store.scan(
      client_prefix(Kind::Queued, "c"),
      [&](std::string_view k, std::string_view) {
        std::string client;
        uint64_t seq;
        EXPECT_TRUE(parse_queued_key(k, client, seq));
        seqs.push_back(seq);
        return true;
      },
      queued_key("c", 3));
  EXPECT_EQ(seqs, (std::vector<uint64_t>{3, 4, 5}));

  Batch del;
  del.del_prefix(client_prefix(Kind::Queued, "c"));
  store.write(std::move(del));
  store.flush();
  size_t left = 0;
  store.scan("Q", [&](std::string_view, std::string_view) {
    ++left;
    return true;
  });
  EXPECT_EQ(left, 1u);  // only c2's record
}

TEST_F(StoreTest, CheckpointIsAReadableCopy) {
  Store store(dir_.string(), Durability::Batch);
  Batch b;
  b.put("Rx", "kept");
  store.write(std::move(b));
  store.flush();
  auto target = dir_.string() + "-backup";
  std::filesystem::remove_all(target);
  store.checkpoint(target);
  {
    Store copy(target, Durability::Batch);
    std::string value;
    copy.scan("R", [&](std::string_view, std::string_view v) {
      value = v;
      return true;
    });
    EXPECT_EQ(value, "kept");
  }
  std::filesystem::remove_all(target);
}

TEST(Durability, Parse) {
  EXPECT_EQ(parse_durability("none"), Durability::None);
  EXPECT_EQ(parse_durability("batch"), Durability::Batch);
  EXPECT_EQ(parse_durability("always"), Durability::Always);
  EXPECT_THROW(parse_durability("sometimes"), std::invalid_argument);
}

}  // namespace
}  // namespace starling::store
