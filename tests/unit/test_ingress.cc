// The broker's front door without sockets: each refusal has its verdict (and leaves the
// publication untouched), taken messages reach sessions, and what must be durable gives a
// ticket to wait for, the inbound QoS 2 id included.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "auth/acl.h"
#include "broker/broker.h"
#include "broker/ingress.h"
#include "config/config.h"
#include "metrics/counters.h"
#include "store/records.h"
#include "store/store.h"

namespace starling::broker {
namespace {

Publication publication(std::string topic, uint8_t qos = 0, bool retain = false) {
  Publication pub;
  pub.topic = std::move(topic);
  pub.payload = "payload";
  pub.qos = qos;
  pub.retain = retain;
  return pub;
}

class IngressTest : public ::testing::Test {
 protected:
  void SetUp() override { settings_ = config::defaults(); }

  // A broker with a store in a fresh directory (or none).
  Broker& start(bool with_store) {
    if (with_store) {
      dir_ = std::filesystem::temp_directory_path() /
             ("starling-ingress-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
      std::filesystem::remove_all(dir_);
      store_ = std::make_unique<store::Store>(dir_.string(), store::Durability::Batch);
    }
    broker_ = std::make_unique<Broker>(settings_, store_.get());
    return *broker_;
  }
  void TearDown() override {
    broker_.reset();
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // An offline session subscribed to filter; persistent when expiry > 0.
  SessionPtr subscriber(const std::string& id, const std::string& filter, uint32_t expiry,
                        uint8_t qos = 1, DeliveryLimits limits = {}) {
    auto opened =
        broker_->open_session(id, true, expiry, Attachment{}, ClientCapabilities{}, limits);
    SubscriptionOptions options;
    options.qos = qos;
    uint64_t ticket = 0;
    broker_->subscribe(opened.session, filter, options, ticket);
    return opened.session;
  }

  Publisher publisher() const {
    Publisher from;
    from.settings = &settings_;
    from.client_id = "pub";
    return from;
  }

  PublishResult publish(Publication pub, const Publisher& from) {
    return broker_->ingress().publish(std::move(pub), from, Clock::now());
  }

  config::Config settings_;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(IngressTest, RefusalsHaveTheirVerdictAndLeaveThePublication) {
  settings_.mqtt.max_qos = 1;
  settings_.mqtt.retain_available = false;
  settings_.limits.max_topic_levels = 3;
  settings_.limits.max_topic_length = 20;
  start(false);
  auto acl = std::make_shared<auth::ClientAcl>(
      auth::AclFile::parse("user u\ntopic write allowed/#\n", "acl").compile_for("u", "pub"));
  Publisher from = publisher();
  from.acl = acl.get();

  struct Case {
    Publication pub;
    PublishVerdict verdict;
  };
  Case cases[] = {
      {publication("allowed/x", 2), PublishVerdict::QosNotSupported},
      {publication("allowed/x", 0, true), PublishVerdict::RetainNotSupported},
      {publication("allowed/+"), PublishVerdict::InvalidTopic},
      {publication(""), PublishVerdict::InvalidTopic},
      {publication("allowed/a/b/c"), PublishVerdict::TopicOverLimits},
      {publication("allowed/aaaaaaaaaaaaaaaaaaaa"), PublishVerdict::TopicOverLimits},
      {publication("$SYS/broker/x"), PublishVerdict::ReservedTopic},
      {publication("$share/g/x"), PublishVerdict::ReservedTopic},
      {publication("other/x"), PublishVerdict::NotAuthorized},
  };
  for (Case& c : cases) {
    const std::string topic = c.pub.topic;
    PublishResult result = publish(std::move(c.pub), from);
    EXPECT_EQ(result.verdict, c.verdict) << topic;
    EXPECT_TRUE(refused_by_rules(result.verdict)) << topic;
    EXPECT_FALSE(taken(result.verdict)) << topic;
    EXPECT_EQ(result.ticket, 0u) << topic;
    EXPECT_FALSE(result.gate) << topic;
  }
  // A refused publication keeps its topic, for the transport's log.
  Publication kept = publication("other/y");
  EXPECT_EQ(broker_->ingress().publish(std::move(kept), from, Clock::now()).verdict,
            PublishVerdict::NotAuthorized);
  EXPECT_EQ(kept.topic, "other/y");  // NOLINT(bugprone-use-after-move): the contract
  EXPECT_EQ(publish(publication("allowed/x", 1), from).verdict, PublishVerdict::NoSubscribers);
}

TEST_F(IngressTest, RefusalsAreCounted) {
  start(false);
  const uint64_t limit = metrics::total(metrics::Counter::LimitTopic);
  const uint64_t denied = metrics::total(metrics::Counter::AclDeniedPublish);
  settings_.limits.max_topic_levels = 2;
  publish(publication("a/b/c"), publisher());
  publish(publication("$SYS/x"), publisher());
  EXPECT_EQ(metrics::total(metrics::Counter::LimitTopic), limit + 1);
  EXPECT_EQ(metrics::total(metrics::Counter::AclDeniedPublish), denied + 1);
}

TEST_F(IngressTest, TakenMessagesReachTheirSubscribers) {
  start(false);
  auto session = subscriber("sub", "t/#", 0);
  EXPECT_EQ(publish(publication("t/1", 1), publisher()).verdict, PublishVerdict::Delivered);
  EXPECT_EQ(publish(publication("u/1", 1), publisher()).verdict, PublishVerdict::NoSubscribers);
  EXPECT_EQ(session->queued_count(), 1u);
}

TEST_F(IngressTest, FullQueuesAreAVerdict) {
  start(false);
  DeliveryLimits limits;
  limits.max_queued_messages = 1;
  auto session = subscriber("sub", "t", 0, 1, limits);
  EXPECT_EQ(publish(publication("t", 1), publisher()).verdict, PublishVerdict::Delivered);
  EXPECT_EQ(publish(publication("t", 1), publisher()).verdict, PublishVerdict::QueuesFull);
  EXPECT_EQ(session->queued_count(), 1u);
}

TEST_F(IngressTest, WithoutAStoreNothingWaits) {
  start(false);
  subscriber("sub", "t", 3600);
  EXPECT_EQ(publish(publication("t", 2, true), publisher()).ticket, 0u);
}

TEST_F(IngressTest, DurableWhatMustBe) {
  start(true);
  subscriber("persistent", "t/p", 3600);
  subscriber("clean", "t/c", 0);
  // QoS 0 to nobody and not retained: nothing to write.
  EXPECT_EQ(publish(publication("t/none"), publisher()).ticket, 0u);
  // QoS 1 to a clean session only: held in memory, nothing to write.
  EXPECT_EQ(publish(publication("t/c", 1), publisher()).ticket, 0u);
  // QoS 1 to a persistent session: its queue record.
  const uint64_t queued = publish(publication("t/p", 1), publisher()).ticket;
  EXPECT_GT(queued, 0u);
  // Retained: the retained message.
  EXPECT_GT(publish(publication("t/r", 0, true), publisher()).ticket, queued);

  // QoS 2 from a persistent session: its packet id, with the message.
  Publication qos2 = publication("t/none", 2);
  qos2.inbound_qos2_id = 7;
  const uint64_t ticket = publish(std::move(qos2), publisher()).ticket;
  EXPECT_GT(ticket, 0u);
  store_->flush();
  EXPECT_GE(store_->durable(), ticket);
  bool found = false;
  store_->scan(store::inbound_key("pub", 7), [&](std::string_view, std::string_view) {
    found = true;
    return false;
  });
  EXPECT_TRUE(found);

  // A refused QoS 2 writes no packet id.
  Publication refused = publication("$SYS/x", 2);
  refused.inbound_qos2_id = 8;
  EXPECT_EQ(publish(std::move(refused), publisher()).ticket, 0u);
}

TEST_F(IngressTest, ABatchCommitsOnce) {
  start(true);
  subscriber("persistent", "t", 3600);
  Publisher from = publisher();
  from.durable_at_qos0 = true;
  Ingress::Batch batch(broker_->ingress());
  for (int i = 0; i < 3; ++i) {
    PublishResult r = batch.publish(publication("t", 1), from, Clock::now());
    EXPECT_EQ(r.verdict, PublishVerdict::Delivered);
    EXPECT_EQ(r.ticket, 0u);  // the batch's is known at commit
  }
  EXPECT_EQ(batch.publish(publication("$SYS/t", 1), from, Clock::now()).verdict,
            PublishVerdict::ReservedTopic);
  const uint64_t ticket = batch.commit();
  EXPECT_GT(ticket, 0u);
  EXPECT_EQ(batch.commit(), ticket);  // once
}

}  // namespace
}  // namespace starling::broker
