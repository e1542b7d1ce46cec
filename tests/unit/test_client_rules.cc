// Per-client rules in EMQX's forms (an HTTP auth service's answer, a JWT claim): parsing and its
// errors, first match wins, "no rule decides" apart from a refusal, placeholders and the values
// that cannot be pasted in, qos/retain limits, literal "eq" topics, shared subscriptions, and
// deny rules that refuse any subscription overlapping them.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "auth/client_rules.h"

namespace starling::auth {
namespace {

using nlohmann::json;

ClientRules rules_for(std::string_view text, std::string_view client_id = "dev1",
                      std::optional<std::string_view> username = "alice") {
  std::string error;
  std::optional<ClientRules> rules =
      ClientRules::from_json(json::parse(text), client_id, username, error);
  EXPECT_TRUE(rules.has_value()) << error;
  return rules.value_or(ClientRules());
}

std::string error_of(std::string_view text) {
  std::string error;
  if (ClientRules::from_json(json::parse(text), "dev1", "alice", error)) return "no error";
  return error;
}

constexpr std::optional<bool> kAllow = true;
constexpr std::optional<bool> kDeny = false;
constexpr std::optional<bool> kNoMatch = std::nullopt;

TEST(ClientRules, FirstMatchWinsAndNoMatchIsNullopt) {
  const ClientRules rules = rules_for(R"([
    {"permission": "deny", "action": "publish", "topic": "t/locked"},
    {"permission": "allow", "action": "publish", "topic": "t/#"},
    {"permission": "allow", "action": "subscribe", "topic": "s/+"},
    {"permission": "deny", "action": "all", "topic": "#"}
  ])");
  EXPECT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules.check_publish("t/locked", 0, false), kDeny);
  EXPECT_EQ(rules.check_publish("t/open", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("t", 1, false), kAllow);  // "t/#" matches its parent
  EXPECT_EQ(rules.check_publish("s/1", 0, false), kDeny);
  EXPECT_EQ(rules.check_subscribe("s/1"), kAllow);
  EXPECT_EQ(rules.check_subscribe("s/+"), kAllow);
  EXPECT_EQ(rules.check_subscribe("s/#"), kDeny);
  EXPECT_EQ(rules.check_subscribe("t/open"), kDeny);
  // A leading wildcard does not reach '$' topics: "#" decides nothing there.
  EXPECT_EQ(rules.check_publish("$SYS/x", 0, false), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("$SYS/#"), kNoMatch);

  const ClientRules publish_only = rules_for(R"([{"permission": "allow", "action": "publish",
                                                  "topic": "a/b"}])");
  EXPECT_EQ(publish_only.check_publish("a/b", 2, true), kAllow);
  EXPECT_EQ(publish_only.check_publish("a/c", 0, false), kNoMatch);
  EXPECT_EQ(publish_only.check_subscribe("a/b"), kNoMatch);
}

TEST(ClientRules, EmptyRulesDecideNothing) {
  for (const char* text : {"[]", "{}"}) {
    const ClientRules rules = rules_for(text);
    EXPECT_EQ(rules.size(), 0u);
    EXPECT_TRUE(rules.empty());
    EXPECT_EQ(rules.check_publish("a", 0, false), kNoMatch);
    EXPECT_EQ(rules.check_subscribe("#"), kNoMatch);
  }
  EXPECT_EQ(ClientRules().check_subscribe("a/b"), kNoMatch);
}

TEST(ClientRules, TopicsListAndAllAction) {
  const ClientRules rules = rules_for(R"([
    {"permission": "allow", "action": "all", "topics": ["a/#", "b/+"]}
  ])");
  EXPECT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules.check_publish("a/x/y", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("b/x", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("b/x/y", 0, false), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("a/+/y"), kAllow);
  EXPECT_EQ(rules.check_subscribe("b/#"), kNoMatch);
}

TEST(ClientRules, SubscribeNeedsAnAllowRuleThatCovers) {
  const ClientRules rules = rules_for(R"([{"permission": "allow", "action": "subscribe",
                                           "topic": "a/+"}])");
  EXPECT_EQ(rules.check_subscribe("a/b"), kAllow);
  EXPECT_EQ(rules.check_subscribe("a/+"), kAllow);
  EXPECT_EQ(rules.check_subscribe("a/#"), kNoMatch);  // "a/#" also matches "a" and "a/b/c"
  EXPECT_EQ(rules.check_subscribe("#"), kNoMatch);
  // An invalid filter is refused outright.
  EXPECT_EQ(rules.check_subscribe("a/b#"), kDeny);
  EXPECT_EQ(rules.check_subscribe(""), kDeny);
}

// Rules are not consulted per message, so a deny rule refuses every subscription that could
// deliver one of its topics.
TEST(ClientRules, DenyRulesRefuseOverlappingSubscriptions) {
  const ClientRules rules = rules_for(R"([
    {"permission": "deny", "action": "subscribe", "topic": "t/secret"},
    {"permission": "deny", "action": "all", "topic": "$SYS/#"},
    {"permission": "allow", "action": "subscribe", "topic": "#"}
  ])");
  EXPECT_EQ(rules.check_subscribe("t/secret"), kDeny);
  EXPECT_EQ(rules.check_subscribe("t/+"), kDeny);
  EXPECT_EQ(rules.check_subscribe("t/#"), kDeny);
  EXPECT_EQ(rules.check_subscribe("+/secret"), kDeny);
  EXPECT_EQ(rules.check_subscribe("t/public"), kAllow);
  EXPECT_EQ(rules.check_subscribe("t/+/x"), kAllow);
  EXPECT_EQ(rules.check_subscribe("u/#"), kAllow);
  // "#" and "+/..." meet no '$' topic, so the $SYS rule leaves them alone.
  EXPECT_EQ(rules.check_subscribe("#"), kDeny);  // but it meets t/secret
  EXPECT_EQ(rules.check_subscribe("+/x"), kAllow);
  EXPECT_EQ(rules.check_subscribe("$SYS/broker/uptime"), kDeny);
  EXPECT_EQ(rules.check_subscribe("$SYS"), kDeny);
}

TEST(ClientRules, QosAndRetainLimitPublishRules) {
  const ClientRules rules = rules_for(R"([
    {"permission": "deny", "action": "publish", "topic": "r/#", "retain": true},
    {"permission": "allow", "action": "publish", "topic": "r/#", "qos": [0, 1]},
    {"permission": "allow", "action": "all", "topic": "q/#", "qos": 2, "retain": "all"},
    {"permission": "allow", "action": "publish", "topic": "n/#", "retain": false}
  ])");
  EXPECT_EQ(rules.check_publish("r/1", 0, true), kDeny);
  EXPECT_EQ(rules.check_publish("r/1", 1, false), kAllow);
  EXPECT_EQ(rules.check_publish("r/1", 2, false), kNoMatch);
  EXPECT_EQ(rules.check_publish("q/1", 2, true), kAllow);
  EXPECT_EQ(rules.check_publish("q/1", 1, false), kNoMatch);
  EXPECT_EQ(rules.check_publish("n/1", 1, false), kAllow);
  EXPECT_EQ(rules.check_publish("n/1", 1, true), kNoMatch);
  EXPECT_EQ(rules.check_publish("q/1", 3, false), kNoMatch);
  // Subscriptions are checked without them.
  EXPECT_EQ(rules.check_subscribe("q/#"), kAllow);
}

TEST(ClientRules, EqTopicsAreLiteral) {
  const ClientRules rules = rules_for(R"([
    {"permission": "allow", "action": "subscribe", "topic": "eq t/#"},
    {"permission": "deny", "action": "all", "topic": "eq d/+"},
    {"permission": "allow", "action": "all", "topic": "d/#"}
  ])");
  EXPECT_EQ(rules.check_subscribe("t/#"), kAllow);
  EXPECT_EQ(rules.check_subscribe("t/1"), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("t/+"), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("$share/g/t/#"), kAllow);
  EXPECT_EQ(rules.check_subscribe("d/+"), kDeny);
  EXPECT_EQ(rules.check_subscribe("d/1"), kAllow);
  EXPECT_EQ(rules.check_subscribe("d/#"), kAllow);
  EXPECT_EQ(rules.check_publish("d/x", 0, false), kAllow);
  // "eq" needs its space; "eqt/1" is an ordinary topic.
  const ClientRules plain = rules_for(R"([{"permission": "allow", "action": "publish",
                                           "topic": "eqt/1"}])");
  EXPECT_EQ(plain.check_publish("eqt/1", 0, false), kAllow);
}

TEST(ClientRules, SharedSubscriptionsAreCheckedAsTheirFilter) {
  const ClientRules rules = rules_for(R"([{"permission": "allow", "action": "subscribe",
                                           "topic": "jobs/#"}])");
  EXPECT_EQ(rules.check_subscribe("$share/workers/jobs/1"), kAllow);
  EXPECT_EQ(rules.check_subscribe("$share/workers/other"), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("$share//jobs/1"), kDeny);
  EXPECT_EQ(rules.check_subscribe("$share/workers"), kDeny);
  EXPECT_EQ(rules.check_subscribe("$share/workers/"), kDeny);  // an empty filter
}

TEST(ClientRules, Placeholders) {
  const ClientRules rules = rules_for(R"([
    {"permission": "allow", "action": "publish", "topic": "c/%c/#"},
    {"permission": "allow", "action": "publish", "topic": "c2/${clientid}"},
    {"permission": "allow", "action": "publish", "topic": "u/%u"},
    {"permission": "allow", "action": "publish", "topic": "u2/${username}/${clientid}"},
    {"permission": "allow", "action": "publish", "topic": "x/${peerhost}"}
  ])",
                                      "dev1", "alice");
  EXPECT_EQ(rules.check_publish("c/dev1/x", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("c/dev2/x", 0, false), kNoMatch);
  EXPECT_EQ(rules.check_publish("c2/dev1", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("u/alice", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("u2/alice/dev1", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("u/%u", 0, false), kNoMatch);
  // Other placeholders stay as text.
  EXPECT_EQ(rules.check_publish("x/${peerhost}", 0, false), kAllow);
  // One pass: a client id that looks like a placeholder stays literal.
  const ClientRules literal = rules_for(R"([{"permission": "allow", "action": "publish",
                                             "topic": "c/%c/%u"}])",
                                        "%u", "bob");
  EXPECT_EQ(literal.check_publish("c/%u/bob", 0, false), kAllow);
}

// Values that would widen an allow rule drop it; a deny rule stays and denies at least what it
// was meant to.
TEST(ClientRules, ValuesThatDoNotFit) {
  const char* text = R"([
    {"permission": "allow", "action": "publish", "topic": "c/%c"},
    {"permission": "allow", "action": "publish", "topic": "u/%u"},
    {"permission": "allow", "action": "publish", "topic": "always"}
  ])";
  const std::string_view ids[] = {"", "a/b", "+", "#", std::string_view("a\0b", 3)};
  for (std::string_view id : ids) {
    const ClientRules rules = rules_for(text, id, "alice");
    EXPECT_EQ(rules.size(), 2u) << id;
    EXPECT_EQ(rules.check_publish("c/x", 0, false), kNoMatch) << id;
    EXPECT_EQ(rules.check_publish("c/a/b", 0, false), kNoMatch) << id;
    EXPECT_EQ(rules.check_publish("u/alice", 0, false), kAllow) << id;
  }
  EXPECT_EQ(rules_for(text, "dev1", std::nullopt).size(), 2u);
  EXPECT_EQ(rules_for(text, "dev1", "").size(), 2u);
  EXPECT_EQ(rules_for(text, "dev1", "a+").size(), 2u);

  const char* deny_text = R"([
    {"permission": "deny", "action": "publish", "topic": "secret/%c/#"},
    {"permission": "deny", "action": "subscribe", "topic": "%c/x"},
    {"permission": "allow", "action": "all", "topic": "#"}
  ])";
  // "a/b": pasted in as it is, so "secret/a/b/..." stays denied.
  const ClientRules slash = rules_for(deny_text, "a/b");
  EXPECT_EQ(slash.size(), 3u);
  EXPECT_EQ(slash.check_publish("secret/a/b/1", 0, false), kDeny);
  EXPECT_EQ(slash.check_publish("secret/a/c", 0, false), kAllow);
  EXPECT_EQ(slash.check_subscribe("a/b/x"), kDeny);
  // "+" makes the deny wider, which is safe.
  const ClientRules plus = rules_for(deny_text, "+");
  EXPECT_EQ(plus.check_publish("secret/anyone/1", 0, false), kDeny);
  // "#" in the middle is no filter: the rule denies every topic of its action.
  const ClientRules hash = rules_for(deny_text, "#");
  EXPECT_EQ(hash.size(), 3u);
  EXPECT_EQ(hash.check_publish("secret/#/1", 0, false), kDeny);
  EXPECT_EQ(hash.check_publish("anything", 0, false), kDeny);
  EXPECT_EQ(hash.check_publish("$SYS/x", 0, false), kDeny);
  EXPECT_EQ(hash.check_subscribe("anything"), kDeny);
  // No user name: a deny rule with %u still applies to the empty name.
  const ClientRules anonymous = rules_for(R"([
    {"permission": "deny", "action": "publish", "topic": "u/%u"},
    {"permission": "allow", "action": "publish", "topic": "u/#"}
  ])",
                                          "dev1", std::nullopt);
  EXPECT_EQ(anonymous.check_publish("u/", 0, false), kDeny);
  EXPECT_EQ(anonymous.check_publish("u/bob", 0, false), kAllow);
}

TEST(ClientRules, OldJwtForm) {
  const ClientRules rules = rules_for(R"({"pub": ["p/#", "own/%c"], "sub": ["s/+"],
                                          "all": ["both"]})");
  EXPECT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules.check_publish("p/1", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("own/dev1", 0, false), kAllow);
  EXPECT_EQ(rules.check_publish("s/1", 0, false), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("s/1"), kAllow);
  EXPECT_EQ(rules.check_subscribe("p/1"), kNoMatch);
  EXPECT_EQ(rules.check_subscribe("both"), kAllow);
  EXPECT_EQ(rules.check_publish("both", 2, true), kAllow);
}

TEST(ClientRules, MalformedDocuments) {
  EXPECT_EQ(error_of(R"("allow")"), "the rules are a JSON string, not a list or object");
  EXPECT_EQ(error_of("null"), "the rules are a JSON null, not a list or object");
  EXPECT_EQ(error_of("3"), "the rules are a JSON number, not a list or object");
  EXPECT_EQ(error_of(R"([[]])"), "rule 1: not a JSON object");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a"},
                         {"permission": "maybe", "action": "all", "topic": "a"}])"),
            "rule 2: permission 'maybe' (allow or deny)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "read", "topic": "a"}])"),
            "rule 1: action 'read' (publish, subscribe or all)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": 1, "topic": "a"}])"),
            "rule 1: action '1' (publish, subscribe or all)");
  EXPECT_EQ(error_of(R"([{"action": "all", "topic": "a"}])"), "rule 1: no permission");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "topic": "a"}])"), "rule 1: no action");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all"}])"),
            "rule 1: needs one of topic or topics");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a",
                          "topics": ["b"]}])"),
            "rule 1: needs one of topic or topics");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": 5}])"),
            "rule 1: topic is not a string");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topics": "a"}])"),
            "rule 1: topics is not a list");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topics": ["a", 1]}])"),
            "rule 1: topics holds a JSON number");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a/#/b"}])"),
            "rule 1: invalid topic filter 'a/#/b'");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a+"}])"),
            "rule 1: invalid topic filter 'a+'");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": ""}])"),
            "rule 1: invalid topic filter ''");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "eq "}])"),
            "rule 1: invalid topic filter ''");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a/%c#"}])"),
            "rule 1: invalid topic filter 'a/%c#'");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a", "qos": 3}])"),
            "rule 1: qos '3' (0, 1, 2 or a non-empty list of them)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a", "qos": []}])"),
            "rule 1: qos '[]' (0, 1, 2 or a non-empty list of them)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a",
                          "qos": [0, "1"]}])"),
            "rule 1: qos '[0,\"1\"]' (0, 1, 2 or a non-empty list of them)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a", "qos": -1}])"),
            "rule 1: qos '-1' (0, 1, 2 or a non-empty list of them)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a",
                          "qos": 18446744073709551615}])"),
            "rule 1: qos '18446744073709551615' (0, 1, 2 or a non-empty list of them)");
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a",
                          "retain": "yes"}])"),
            "rule 1: retain 'yes' (true, false or \"all\")");
  // A condition this broker does not know could narrow the rule: not ignored.
  EXPECT_EQ(error_of(R"([{"permission": "allow", "action": "all", "topic": "a",
                          "clientid": "other"}])"),
            "rule 1: unknown member 'clientid'");
  EXPECT_EQ(error_of(R"({"pub": ["a"], "publish": ["b"]})"),
            "unknown member 'publish' (pub, sub or all)");
  EXPECT_EQ(error_of(R"({"pub": "a"})"), "pub is not a list");
  EXPECT_EQ(error_of(R"({"sub": [null]})"), "sub holds a JSON null");
  EXPECT_EQ(error_of(R"({"all": ["a/#/"]})"), "all: invalid topic filter 'a/#/'");
  // Control bytes in messages are replaced.
  EXPECT_EQ(error_of(R"([{"permission": "allow\n", "action": "all", "topic": "a"}])"),
            "rule 1: permission 'allow?' (allow or deny)");
}

TEST(FiltersOverlap, SomeTopicMatchesBoth) {
  struct Case {
    const char* a;
    const char* b;
    bool overlap;
  };
  const Case cases[] = {
      {"a/b", "a/b", true},     {"a/b", "a/c", false},      {"a/+", "a/b", true},
      {"a/+", "+/b", true},     {"a/+", "a", false},        {"a/#", "a", true},
      {"a/#", "a/b/c", true},   {"a/+/#", "a", false},      {"a/+/#", "a/b", true},
      {"#", "x/y", true},       {"#", "$SYS/x", false},     {"+/x", "$SYS/x", false},
      {"$SYS/#", "$SYS", true}, {"$SYS/+", "$SYS/x", true}, {"+", "#", true},
      {"a//b", "a/+/b", true},  {"a//b", "a/b", false},     {"a/b/c", "a/b", false},
      {"+/+", "a", false},      {"+/+", "a/#", true},       {"$a", "$b", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(filters_overlap(c.a, c.b), c.overlap) << c.a << " ~ " << c.b;
    EXPECT_EQ(filters_overlap(c.b, c.a), c.overlap) << c.b << " ~ " << c.a;
  }
}

}  // namespace
}  // namespace starling::auth
