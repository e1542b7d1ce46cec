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
