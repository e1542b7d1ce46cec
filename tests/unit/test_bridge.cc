// [[bridges]] as the config reads it, and the topic rules' renaming (Mosquitto's semantics).
#include <gtest/gtest.h>

#include <string>

#include "bridge/topic_map.h"
#include "config/config.h"

namespace starling::bridge {
namespace {

using config::BridgeTopic;
using config::ConfigError;

std::string error_of(const std::string& text) {
  try {
    config::load_string(text, "t.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return "";
}

BridgeTopic rule(std::string pattern, std::string direction, std::string local,
                 std::string remote) {
  BridgeTopic t;
  t.pattern = std::move(pattern);
  t.direction = std::move(direction);
  t.local_prefix = std::move(local);
  t.remote_prefix = std::move(remote);
  return t;
}

TEST(BridgeConfig, ReadsEveryKey) {
  config::Config c = config::load_string(R"(
[[bridges]]
name = "cloud"
addresses = ["broker.example:8883", "[::1]:1884", "10.0.0.1"]
protocol = "3.1.1"
client_id = "edge-1"
username = "u"
password = "p"
keep_alive = 30
clean_start = true
session_expiry = 600
try_private = false
local_username = "bridge"
max_queued_messages = 500
[[bridges.topics]]
pattern = "sensors/#"
direction = "both"
qos = 2
local_prefix = "site/"
remote_prefix = "edge/"
)",
                                         "t.toml");
  ASSERT_EQ(c.bridges.size(), 1u);
  const config::BridgeSettings& b = c.bridges[0];
  EXPECT_EQ(b.name, "cloud");
  ASSERT_EQ(b.addresses.size(), 3u);
  EXPECT_EQ(b.addresses[0].host, "broker.example");
  EXPECT_EQ(b.addresses[0].port, 8883);
  EXPECT_EQ(b.addresses[1].host, "::1");
  EXPECT_EQ(b.addresses[1].port, 1884);
  EXPECT_EQ(b.addresses[2].port, 1883);
  EXPECT_EQ(b.protocol, "3.1.1");
  EXPECT_TRUE(b.clean_start);
  EXPECT_FALSE(b.try_private);
  EXPECT_EQ(b.max_queued_messages, 500u);
  ASSERT_EQ(b.topics.size(), 1u);
  EXPECT_EQ(b.topics[0].local_filter(), "site/sensors/#");
  EXPECT_EQ(b.topics[0].remote_filter(), "edge/sensors/#");
  EXPECT_EQ(b.local_client_id(), "$bridge/cloud");
}

TEST(BridgeConfig, MistakesFailWithTheirLine) {
  const std::string head = "[[bridges]]\nname = \"b\"\n";
  const std::string topic = "[[bridges.topics]]\npattern = \"#\"\n";
  EXPECT_NE(error_of(head + "addresses = [\"h:0\"]\n" + topic).find("t.toml:3"), std::string::npos);
  EXPECT_NE(error_of(head + topic).find("needs addresses"), std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\n").find("at least one"), std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\nprotocol = \"4\"\n" + topic).find("t.toml:4"),
            std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\npassword = \"x\"\n" + topic).find("username"),
            std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\ntls_verify = false\n" + topic).find("tls"),
            std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\n" + topic + "local_prefix = \"a/+/\"\n")
                .find("wildcards"),
            std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\n" + topic + "direction = \"sideways\"\n")
                .find("t.toml:6"),
            std::string::npos);
  EXPECT_NE(error_of(head + "addresses = [\"h:1\"]\n" + topic + "[[bridges]]\nname = \"b\"\n" +
                     "addresses = [\"h:1\"]\n" + topic)
                .find("second bridge"),
            std::string::npos);
}

TEST(TopicMap, RenamesBothWaysWithPrefixes) {
  TopicMap map({rule("sensors/#", "out", "site/", "edge/"), rule("#", "in", "cloud/", "down/")});
  EXPECT_EQ(map.to_remote("site/sensors/t1"), "edge/sensors/t1");
  EXPECT_EQ(map.to_remote("site/other"), std::nullopt);
  EXPECT_EQ(map.to_local("down/cmd/1"), "cloud/cmd/1");
  EXPECT_EQ(map.to_local("edge/sensors/t1"), std::nullopt);  // not an in rule
  ASSERT_EQ(map.local_subscriptions().size(), 1u);
  EXPECT_EQ(map.local_subscriptions()[0].filter, "site/sensors/#");
  ASSERT_EQ(map.remote_subscriptions().size(), 1u);
  EXPECT_EQ(map.remote_subscriptions()[0].filter, "down/#");
}

TEST(TopicMap, FirstRuleWinsAndEmptyPatternMapsOneTopic) {
  TopicMap map({rule("", "both", "local/a", "remote/b"), rule("#", "out", "", "all/")});
  EXPECT_EQ(map.to_remote("local/a"), "remote/b");
  EXPECT_EQ(map.to_remote("local/a/x"), "all/local/a/x");
  EXPECT_EQ(map.to_local("remote/b"), "local/a");
  EXPECT_EQ(map.to_local("remote/b/c"), std::nullopt);
}

}  // namespace
}  // namespace starling::bridge
