// ACL files (Mosquitto's acl_file format): the level matcher, parsing with its errors, and the
// per-client rule sets the broker consults.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "auth/acl.h"
#include "auth/topic_match.h"

namespace starling::auth {
namespace {

bool matches(std::string_view filter, std::string_view topic) {
  return TopicFilter(filter).matches(topic);
}

bool covers(std::string_view wide, std::string_view narrow) {
  return TopicFilter(wide).covers(TopicFilter(narrow));
}

std::string load_error(std::string_view text) {
  try {
    AclFile::parse(text, "acl");
  } catch (const LoadError& e) {
    return e.what();
  }
  return "no error";
}

TEST(TopicFilter, Matches) {
  EXPECT_TRUE(matches("a/b", "a/b"));
  EXPECT_FALSE(matches("a/b", "a/b/c"));
  EXPECT_FALSE(matches("a/b/c", "a/b"));
  EXPECT_TRUE(matches("a/+", "a/b"));
  EXPECT_TRUE(matches("a/+", "a/"));
  EXPECT_FALSE(matches("a/+", "a"));
  EXPECT_FALSE(matches("a/+", "a/b/c"));
  EXPECT_TRUE(matches("a/#", "a"));
  EXPECT_TRUE(matches("a/#", "a/b/c"));
  EXPECT_FALSE(matches("a/#", "ab"));
  EXPECT_TRUE(matches("#", "a/b"));
  EXPECT_TRUE(matches("+/+/c", "a//c"));
  EXPECT_TRUE(matches("a//b", "a//b"));
  EXPECT_FALSE(matches("a//b", "a/b"));
  EXPECT_FALSE(matches("#", "$SYS/x"));
  EXPECT_FALSE(matches("+/x", "$SYS/x"));
  EXPECT_TRUE(matches("$SYS/#", "$SYS/x"));
  EXPECT_TRUE(matches("$SYS/+", "$SYS/x"));
  EXPECT_TRUE(matches("a/+", "a/$x"));
}

TEST(TopicFilter, Covers) {
  EXPECT_TRUE(covers("a/#", "a/+/c"));
  EXPECT_TRUE(covers("a/#", "a/#"));
  EXPECT_TRUE(covers("a/#", "a"));
  EXPECT_TRUE(covers("a/#", "a/b/#"));
  EXPECT_FALSE(covers("a/+", "a/#"));
  EXPECT_FALSE(covers("a/+/#", "a/#"));  // "a/#" matches "a" too
  EXPECT_TRUE(covers("a/+", "a/b"));
  EXPECT_TRUE(covers("a/+", "a/+"));
  EXPECT_FALSE(covers("a/b", "a/+"));
  EXPECT_FALSE(covers("a/b", "a/b/c"));
  EXPECT_FALSE(covers("a/b/c", "a/b"));
  EXPECT_TRUE(covers("#", "#"));
  EXPECT_TRUE(covers("#", "+/+"));
  EXPECT_TRUE(covers("+/#", "#"));
  EXPECT_FALSE(covers("+/+", "#"));
  EXPECT_FALSE(covers("#", "$SYS/#"));
  EXPECT_FALSE(covers("+/#", "$SYS/x"));
  EXPECT_TRUE(covers("$SYS/#", "$SYS/broker/+"));
  EXPECT_TRUE(covers("+/x", "+/x"));
}

TEST(TopicFilter, Validity) {
  EXPECT_TRUE(valid_filter("a/b"));
  EXPECT_TRUE(valid_filter("#"));
  EXPECT_TRUE(valid_filter("+/+/#"));
  EXPECT_TRUE(valid_filter("a b/c d"));
  EXPECT_FALSE(valid_filter(""));
  EXPECT_FALSE(valid_filter("a/#/b"));
  EXPECT_FALSE(valid_filter("a#"));
  EXPECT_FALSE(valid_filter("a/b+"));
  EXPECT_FALSE(valid_filter(std::string_view("a\0b", 3)));
}

TEST(AclFile, Errors) {
  EXPECT_EQ(load_error("# fine\n\nuser"), "acl:3: missing user name after 'user'");
  EXPECT_EQ(load_error("topic"), "acl:1: missing topic filter after 'topic'");
  EXPECT_EQ(load_error("topic read"), "acl:1: missing topic filter after 'read'");
  EXPECT_EQ(load_error("pattern deny   "), "acl:1: missing topic filter after 'deny'");
  EXPECT_EQ(load_error("topic read a/#/b"), "acl:1: invalid topic filter 'a/#/b'");
  EXPECT_EQ(load_error("pattern write a/%u#"), "acl:1: invalid topic filter 'a/%u#'");
  EXPECT_EQ(load_error("topics a"),
            "acl:1: unknown directive 'topics' (expected user, topic or pattern)");
  EXPECT_EQ(load_error("\n\nauth_plugin x"),
            "acl:3: unknown directive 'auth_plugin' (expected user, topic or pattern)");
  try {
    AclFile::load("/nonexistent/acl");
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/acl: No such file or directory");
  }
}

constexpr std::string_view kAcl = R"(# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read sensors/+/temp
topic deny sensors/secret/#
topic write commands/room 1

user bob smith
topic sensors/#

  # patterns apply to everyone
pattern write devices/%c/status
pattern readwrite users/%u/#
pattern read shared/%u-%c
)";

TEST(AclFile, UserSectionsAndAnonymous) {
  const AclFile acl = AclFile::parse(kAcl, "acl");
  const ClientAcl anonymous = acl.compile_for(std::nullopt, "dev1");
  EXPECT_TRUE(anonymous.can_read("public/news"));
  EXPECT_FALSE(anonymous.can_publish("public/news"));
  EXPECT_TRUE(anonymous.can_subscribe("public/#"));
  EXPECT_TRUE(anonymous.can_subscribe("public/+/x"));
  EXPECT_FALSE(anonymous.can_subscribe("#"));
  EXPECT_FALSE(anonymous.can_read("alice/x"));
  EXPECT_TRUE(anonymous.can_publish("devices/dev1/status"));
  EXPECT_FALSE(anonymous.can_publish("devices/dev2/status"));
  EXPECT_FALSE(anonymous.can_read("users//x"));  // %u never matches without a username

  const ClientAcl alice = acl.compile_for("alice", "phone");
  EXPECT_TRUE(alice.can_publish("alice/a/b"));
  EXPECT_TRUE(alice.can_read("alice"));
  EXPECT_TRUE(alice.can_read("sensors/kitchen/temp"));
  EXPECT_FALSE(alice.can_publish("sensors/kitchen/temp"));
  EXPECT_FALSE(alice.can_read("sensors/secret/temp"));
  EXPECT_TRUE(alice.can_publish("commands/room 1"));  // the filter is the rest of the line
  EXPECT_FALSE(alice.can_read("commands/room 1"));
  EXPECT_FALSE(alice.can_read("public/news"));  // anonymous rules are not hers
  EXPECT_TRUE(alice.can_publish("users/alice/x"));
  EXPECT_FALSE(alice.can_publish("users/bob/x"));
  EXPECT_TRUE(alice.can_read("shared/alice-phone"));
  EXPECT_TRUE(alice.can_publish("devices/phone/status"));
  EXPECT_FALSE(alice.reads_everything());

  // Subscriptions: allowed when covered; a deny that covers refuses, one that overlaps only
  // part is left to the per-message read check.
  EXPECT_TRUE(alice.can_subscribe("sensors/+/temp"));
  EXPECT_TRUE(alice.can_subscribe("sensors/kitchen/temp"));
  EXPECT_FALSE(alice.can_subscribe("sensors/secret/temp"));
  EXPECT_FALSE(alice.can_subscribe("sensors/#"));
  EXPECT_TRUE(alice.can_subscribe("alice/#"));
  EXPECT_FALSE(alice.can_subscribe("commands/room 1"));  // write only
  EXPECT_FALSE(alice.can_subscribe("alice/#/x"));        // invalid
  EXPECT_TRUE(alice.can_subscribe("$share/group/alice/+"));
  EXPECT_FALSE(alice.can_subscribe("$share/group/sensors/#"));
  EXPECT_FALSE(alice.can_subscribe("$share//alice/x"));

  const ClientAcl bob = acl.compile_for("bob smith", "c");
  EXPECT_TRUE(bob.can_publish("sensors/a"));
  EXPECT_TRUE(bob.can_read("sensors"));
  EXPECT_TRUE(bob.can_subscribe("sensors/#"));
  EXPECT_TRUE(bob.can_read("users/bob smith/inbox"));

  // A username without a section gets only the patterns.
  const ClientAcl carol = acl.compile_for("carol", "c");
  EXPECT_FALSE(carol.can_read("public/news"));
  EXPECT_TRUE(carol.can_read("users/carol/x"));
  EXPECT_FALSE(carol.can_read("sensors/a"));
}

TEST(AclFile, DenyWins) {
  const AclFile acl = AclFile::parse(
      "topic deny a/secret\ntopic readwrite a/#\ntopic deny b/+\ntopic read #\n", "acl");
  const ClientAcl client = acl.compile_for(std::nullopt, "c");
  EXPECT_TRUE(client.can_publish("a/open"));
  EXPECT_FALSE(client.can_publish("a/secret"));
  EXPECT_FALSE(client.can_read("a/secret"));
  EXPECT_TRUE(client.can_read("a/secret/deeper"));
  EXPECT_FALSE(client.can_read("b/x"));
  EXPECT_TRUE(client.can_read("b"));
  EXPECT_TRUE(client.can_subscribe("#"));
  EXPECT_FALSE(client.can_subscribe("b/x"));
  EXPECT_FALSE(client.can_subscribe("b/+"));
  EXPECT_TRUE(client.can_subscribe("b/#"));  // the deny is partial: enforced per message
  EXPECT_FALSE(client.reads_everything());
}

TEST(AclFile, DollarTopicsNeedTheirOwnRules) {
  const AclFile acl =
      AclFile::parse("topic readwrite #\nuser admin\ntopic read $SYS/#\ntopic #\n", "acl");
  const ClientAcl anonymous = acl.compile_for(std::nullopt, "c");
  EXPECT_TRUE(anonymous.reads_everything());
  EXPECT_TRUE(anonymous.can_read("x/y"));
  EXPECT_TRUE(anonymous.can_publish("x/y"));
  EXPECT_FALSE(anonymous.can_read("$SYS/broker/uptime"));
  EXPECT_FALSE(anonymous.can_subscribe("$SYS/#"));
  EXPECT_FALSE(anonymous.can_publish("$SYS/x"));

  const ClientAcl admin = acl.compile_for("admin", "c");
  EXPECT_TRUE(admin.can_read("$SYS/broker/uptime"));
  EXPECT_TRUE(admin.can_subscribe("$SYS/#"));
  EXPECT_FALSE(admin.can_publish("$SYS/x"));
  EXPECT_TRUE(admin.reads_everything());
}

TEST(AclFile, SubstitutionRefusesDangerousValues) {
  const AclFile acl = AclFile::parse(
      "pattern readwrite u/%u/#\npattern readwrite c/%c/#\npattern read %c%u\n", "acl");
  for (const char* bad : {"+", "#", "a/b", "x+", ""}) {
    const ClientAcl by_user = acl.compile_for(bad, "ok");
    EXPECT_FALSE(by_user.can_read("u/" + std::string(bad) + "/x")) << bad;
    EXPECT_FALSE(by_user.can_read("u/a/b/x")) << bad;
    EXPECT_FALSE(by_user.can_subscribe("u/#")) << bad;
    EXPECT_TRUE(by_user.can_read("c/ok/x")) << bad;  // the other pattern still applies

    const ClientAcl by_client = acl.compile_for("ok", bad);
    EXPECT_FALSE(by_client.can_read("c/a/b/x")) << bad;
    EXPECT_FALSE(by_client.can_subscribe("c/#")) << bad;
    EXPECT_TRUE(by_client.can_read("u/ok/x")) << bad;
  }
  // Substitution happens once: a client id "%u" is literal text.
  const ClientAcl literal = acl.compile_for("bob", "%u");
  EXPECT_TRUE(literal.can_read("c/%u/x"));
  EXPECT_FALSE(literal.can_read("c/bob/x"));
  EXPECT_TRUE(literal.can_read("%ubob"));
}

TEST(AclFile, AccessWordsAndSpaces) {
  const AclFile acl = AclFile::parse(
      "topic\tread\t a b/c \ntopic write w\ntopic readwrite rw\ntopic plain\ntopic readx y\n",
      "acl");
  const ClientAcl client = acl.compile_for(std::nullopt, "c");
  EXPECT_TRUE(client.can_read("a b/c"));
  EXPECT_FALSE(client.can_publish("a b/c"));
  EXPECT_TRUE(client.can_publish("w"));
  EXPECT_FALSE(client.can_read("w"));
  EXPECT_TRUE(client.can_read("rw"));
  EXPECT_TRUE(client.can_publish("rw"));
  EXPECT_TRUE(client.can_read("plain"));
  EXPECT_TRUE(client.can_publish("plain"));
  EXPECT_TRUE(client.can_read("readx y"));  // not an access word: part of the filter
}

TEST(AclFile, ClientAclOutlivesFile) {
  auto file = std::make_shared<const AclFile>(AclFile::parse("pattern read in/%c/#\n", "acl"));
  const ClientAcl client = file->compile_for("u", "dev");
  file.reset();
  EXPECT_TRUE(client.can_read("in/dev/x"));
  EXPECT_TRUE(client.can_subscribe("in/dev/#"));
}

TEST(ClientAcl, AllowAll) {
  const ClientAcl acl = ClientAcl::allow_all();
  EXPECT_TRUE(acl.reads_everything());
  EXPECT_TRUE(acl.can_read("$SYS/x"));
  EXPECT_TRUE(acl.can_publish("a"));
  EXPECT_TRUE(acl.can_subscribe("#"));
  EXPECT_FALSE(acl.can_subscribe("a/#/b"));
}

TEST(ClientAcl, EmptyFileAllowsNothing) {
  const ClientAcl acl = AclFile::parse("", "acl").compile_for("u", "c");
  EXPECT_FALSE(acl.can_read("a"));
  EXPECT_FALSE(acl.can_publish("a"));
  EXPECT_FALSE(acl.can_subscribe("a"));
  EXPECT_FALSE(acl.reads_everything());
}

}  // namespace
}  // namespace starling::auth
