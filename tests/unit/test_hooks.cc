// src/hooks without a network: the webhook events' JSON (written by hand, so checked against
// nlohmann's parser here) and the HTTP auth service's answers as the broker takes them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hooks/http_auth.h"
#include "hooks/webhooks.h"

namespace starling::hooks {
namespace {

using broker::Decision;
using broker::Event;
using broker::EventKind;
using json = nlohmann::json;

json parsed(const Event& e, uint64_t seq = 7) {
  std::string out;
  append_event_json(out, e, seq, "node-\"1\"");
  json j = json::parse(out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << out;
  return j;
}

TEST(WebhookJson, EscapesWhatJsonMust) {
  Event e;
  e.kind = EventKind::ClientDisconnected;
  e.client_id = "a\"b\\c\nd\x01";
  e.username = "caf\xC3\xA9";
  e.reason = "normal";
  e.reason_code = 0;
  json j = parsed(e);
  EXPECT_EQ(j["event"], "client.disconnected");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["node"], "node-\"1\"");
  EXPECT_EQ(j["clientid"], "a\"b\\c\nd\x01");
  EXPECT_EQ(j["username"], "caf\xC3\xA9");
  EXPECT_EQ(j["reason_code"], 0);
}

TEST(WebhookJson, InvalidUtf8StaysValidJson) {
  Event e;
  e.kind = EventKind::SessionSubscribed;
  e.client_id = "bad\xC3";
  e.topic = "t/\xFF";
  json j = parsed(e);
  EXPECT_EQ(j["clientid"], "bad\xEF\xBF\xBD");
  EXPECT_EQ(j["topic"], "t/\xEF\xBF\xBD");
}

TEST(WebhookJson, MessageEventsCarryTheMessage) {
  auto m = std::make_shared<broker::Message>();
  m->topic = "a/b";
  m->payload = std::string("\x00\x01hi", 4);
  m->origin_client_id = "pub";
  Event e;
  e.kind = EventKind::MessageDropped;
  e.client_id = "sub";
  e.message = m;
  e.qos = 1;
  e.reason = "queue_full";
  json j = parsed(e);
  EXPECT_EQ(j["topic"], "a/b");
  EXPECT_EQ(j["payload"], "AAFoaQ==");
  EXPECT_EQ(j["payload_encoding"], "base64");
  EXPECT_EQ(j["from_clientid"], "pub");
  EXPECT_EQ(j["reason"], "queue_full");
  EXPECT_EQ(j["retain"], false);
}

TEST(HttpAuthAnswers, EmqxResultsAndRules) {
  broker::ConnectQuery q;
  q.client_id = "c1";
  q.username = "u";
  EXPECT_EQ(HttpAuth::parse_connect_answer(204, "", q).decision, Decision::Allow);
  EXPECT_EQ(HttpAuth::parse_connect_answer(200, R"({"result":"deny"})", q).decision,
            Decision::Deny);
  EXPECT_EQ(HttpAuth::parse_connect_answer(200, R"({"result":"ignore"})", q).decision,
            Decision::Ignore);
  EXPECT_EQ(HttpAuth::parse_connect_answer(200, R"({"result":"yes"})", q).decision,
            Decision::Failed);
  EXPECT_EQ(HttpAuth::parse_connect_answer(200, "not json", q).decision, Decision::Failed);
  const auto a = HttpAuth::parse_connect_answer(
      200,
      R"({"result":"allow","is_superuser":true,"acl":[{"permission":"allow","action":"publish","topic":"d/${clientid}"}]})",
      q);
  EXPECT_EQ(a.decision, Decision::Allow);
  EXPECT_TRUE(a.superuser);
  ASSERT_TRUE(a.rules);
  EXPECT_EQ(a.rules->check_publish("d/c1", 0, false), std::optional<bool>(true));
  EXPECT_EQ(a.rules->check_publish("d/c2", 0, false), std::nullopt);
  // Rules that do not parse make the answer unusable, not looser.
  EXPECT_EQ(
      HttpAuth::parse_connect_answer(200, R"({"result":"allow","acl":[{"permission":"maybe"}]})", q)
          .decision,
      Decision::Failed);
  std::string why;
  EXPECT_EQ(HttpAuth::parse_acl_answer(200, R"({"result":"allow"})", why), Decision::Allow);
  EXPECT_EQ(HttpAuth::parse_acl_answer(200, "[]", why), Decision::Failed);
  EXPECT_FALSE(why.empty());
}

}  // namespace
}  // namespace starling::hooks
