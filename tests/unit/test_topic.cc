// Topic names, topic filters and matching (section 4.7), and MQTT's UTF-8 rules (1.5.4).
#include "mqtt/topic.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace starling::mqtt {
namespace {

using namespace std::string_literals;

TEST(Utf8, Valid) {
  const std::string cases[] = {
      "",
      "abc",
      "sport/tennis/player1",
      "\xC3\xA9",          // U+00E9
      "\xDF\xBF",          // U+07FF
      "\xE0\xA0\x80",      // U+0800, smallest 3-byte
      "\xE2\x82\xAC",      // U+20AC
      "\xED\x9F\xBF",      // U+D7FF, just below the surrogates
      "\xEE\x80\x80",      // U+E000, just above them
      "\xEF\xBF\xBF",      // U+FFFF: a non-character, discouraged but not forbidden
      "\xF0\x90\x80\x80",  // U+10000, smallest 4-byte
      "\xF0\x9D\x84\x9E",  // U+1D11E
      "\xF4\x8F\xBF\xBF",  // U+10FFFF, the last code point
      "\x01\x1F\x7F",      // control characters other than U+0000 are allowed
      "\xC2\x80\xC2\x9F",  // C1 controls likewise
      "\xEF\xBB\xBF"
      "bom",
  };
  for (const std::string& s : cases)
    EXPECT_TRUE(valid_utf8(s)) << s;
}

TEST(Utf8, Invalid) {
  const std::string cases[] = {
      "\0"s,                       // U+0000
      "abc\0def"s,                 // embedded U+0000
      "\xC0\x80",                  // overlong U+0000
      "\xC0\xAF",                  // overlong '/'
      "\xC1\xBF",                  // overlong U+007F
      "\xE0\x80\x80",              // overlong 3-byte
      "\xE0\x9F\xBF",              // overlong U+07FF
      "\xF0\x80\x80\x80",          // overlong 4-byte
      "\xF0\x8F\xBF\xBF",          // overlong U+FFFF
      "\xED\xA0\x80",              // U+D800
      "\xED\xAD\xBF",              // U+DB7F
      "\xED\xBF\xBF",              // U+DFFF
      "\xED\xA0\x80\xED\xB0\x80",  // a CESU-8 surrogate pair
      "\xF4\x90\x80\x80",          // U+110000
      "\xF5\x80\x80\x80",
      "\xF8\x88\x80\x80\x80",  // 5-byte form
      "\xFE",
      "\xFF",
      "\x80",  // lone continuation
      "a\xBF",
      "\xC3",          // truncated 2-byte
      "\xE2\x82",      // truncated 3-byte
      "\xF0\x9D\x84",  // truncated 4-byte
      "\xC3\x28",      // bad continuation
      "\xE2\x28\xA1",
      "\xE2\x82\x28",
      "\xF0\x9D\x28\x9E",
      "\xF0\x9D\x84\x28",
  };
  for (const std::string& s : cases)
    EXPECT_FALSE(valid_utf8(s)) << testing::PrintToString(s);
}

// The eight-byte ASCII fast path must not skip over anything it should look at.
TEST(Utf8, EveryPositionInLongStrings) {
  const std::string base(40, 'a');
  for (size_t i = 0; i < base.size(); ++i) {
    std::string s = base;
    s[i] = '\0';
    EXPECT_FALSE(valid_utf8(s)) << "NUL at " << i;
    s = base;
    s[i] = '\x80';
    EXPECT_FALSE(valid_utf8(s)) << "continuation at " << i;
    s = base;
    s.replace(i, 1, "\xE2\x82\xAC");
    EXPECT_TRUE(valid_utf8(s)) << "euro at " << i;
    s = base.substr(0, i) + "\xE2\x82";
    EXPECT_FALSE(valid_utf8(s)) << "truncated at " << i;
    s = base;
    s.replace(i, 1, "\xED\xA0\x80");
    EXPECT_FALSE(valid_utf8(s)) << "surrogate at " << i;
  }
  // Non-ASCII followed by a long ASCII run with a NUL at the end.
  EXPECT_FALSE(valid_utf8("\xC3\xA9" + std::string(17, 'x') + "\0"s));
}

TEST(TopicName, Validity) {
  EXPECT_TRUE(valid_topic_name("a"));
  EXPECT_TRUE(valid_topic_name("/"));
  EXPECT_TRUE(valid_topic_name("sport/tennis/player1"));
  EXPECT_TRUE(valid_topic_name("$SYS/broker/load"));
  EXPECT_TRUE(valid_topic_name(" "));
  EXPECT_TRUE(valid_topic_name("\xC3\xA9t\xC3\xA9"));
  EXPECT_TRUE(valid_topic_name(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_name(std::string(65536, 'a')));
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name("a/+"));
  EXPECT_FALSE(valid_topic_name("a/#"));
  EXPECT_FALSE(valid_topic_name("a+b"));
  EXPECT_FALSE(valid_topic_name("#"));
  EXPECT_FALSE(valid_topic_name("a/\xFF"));
  EXPECT_FALSE(valid_topic_name("a\0b"s));
}

TEST(TopicName, ReservedForTheServer) {
  for (const char* t : {"$SYS", "$SYS/broker/version", "$SYS/", "$share", "$share/g/t"}) {
    EXPECT_TRUE(reserved_topic_name(t)) << t;
  }
  for (const char* t : {"$SYSTEM/x", "$sys/broker", "$shared/x", "a/$SYS", "$aws/things", "x"}) {
    EXPECT_FALSE(reserved_topic_name(t)) << t;
  }
}

TEST(TopicFilter, Valid) {
  const char* cases[] = {
      "#",
      "+",
      "a",
      "a/b",
      "a/#",
      "a/+",
      "+/+",
      "+/#",
      "/",
      "//",
      "/+",
      "+/",
      "a/+/b/#",
      "$SYS/#",
      "$SYS/+/x",
      "$share",
      "$shared/g/a",
      "$SHARE/g/a",
      "$share/g/a",
      "$share/g/#",
      "$share/g/+",
      "$share/g/+/x/#",
      "$share/g/$SYS/#",
      "$share/g//",
      "sport/tennis/player1/#",
      "\xC3\xA9/+",
  };
  for (const char* f : cases)
    EXPECT_TRUE(valid_topic_filter(f)) << f;
}

TEST(TopicFilter, Invalid) {
  const std::string cases[] = {
      "",
      "a/#/b",
      "a/#/",
      "#/",
      "##",
      "a+",
      "+a",
      "a/b+/c",
      "++",
      "#a",
      "a#",
      "a/b#",
      "sport/tennis#",
      "$share/",      // neither group nor filter
      "$share/g",     // no filter after the group
      "$share/g/",    // empty filter
      "$share//a",    // empty group
      "$share/g+/a",  // wildcard in the group
      "$share/g#/a",
      "$share/+/a",
      "$share/#/a",
      "$share/g/a/#/b",  // invalid filter after the group
      "$share/g/a+",
      "a/\xFF",
      "\xED\xA0\x80",
      "a\0b"s,
      std::string(65536, 'a'),
  };
  for (const std::string& f : cases) {
    EXPECT_FALSE(valid_topic_filter(f)) << testing::PrintToString(f.substr(0, 40));
  }
  EXPECT_TRUE(valid_topic_filter(std::string(65535, 'a')));
}

TEST(TopicFilter, SplitShared) {
  std::string_view group, rest;
  ASSERT_TRUE(split_shared_filter("$share/consumers/sport/#", group, rest));
  EXPECT_EQ(group, "consumers");
  EXPECT_EQ(rest, "sport/#");
  ASSERT_TRUE(split_shared_filter("$share/g//a", group, rest));
  EXPECT_EQ(group, "g");
  EXPECT_EQ(rest, "/a");
  ASSERT_TRUE(split_shared_filter("$share//a", group, rest));
  EXPECT_EQ(group, "");
  EXPECT_EQ(rest, "a");
  EXPECT_FALSE(split_shared_filter("sport/#", group, rest));
  EXPECT_FALSE(split_shared_filter("$share", group, rest));
  EXPECT_FALSE(split_shared_filter("$share/g", group, rest));
  EXPECT_FALSE(split_shared_filter("$SHARE/g/a", group, rest));
  EXPECT_FALSE(split_shared_filter("$shared/g/a", group, rest));
}

struct MatchCase {
  const char* filter;
  const char* topic;
  bool matches;
};

TEST(TopicMatch, Table) {
  const MatchCase cases[] = {
      // Section 4.7.1.2.
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"#", "sport", true},
      {"#", "sport/tennis", true},
      {"#", "/", true},
      {"#", "/a", true},
      // Section 4.7.1.3.
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player2", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+/tennis/#", "sport/tennis/player1", true},
      {"+/tennis/#", "sport/tennis", true},
      {"+/tennis/#", "sport/golf", false},
      // Empty levels are levels.
      {"+", "", true},
      {"a/+/b", "a//b", true},
      {"a//b", "a//b", true},
      {"a//b", "a/b", false},
      {"+/+/+", "//", true},
      {"/", "/", true},
      {"a/b", "a/b/", false},
      {"a/b/", "a/b", false},
      {"a/b/+", "a/b/", true},
      {"a/+/#", "a/b", true},
      {"a/+/#", "a", false},
      {"a/#", "a/b/c/d", true},
      {"a/#", "ab", false},
      {"a/+", "a/b/c", false},
      // Exact, case-sensitive, no normalisation.
      {"ACCOUNTS", "Accounts", false},
      {"Accounts payable", "Accounts payable", true},
      {"a/b", "a/bc", false},
      {"a/bc", "a/b", false},
      {"\xC3\xA9/+", "\xC3\xA9/x", true},
      // Section 4.7.2: '$' topics.
      {"#", "$SYS", false},
      {"#", "$SYS/monitor/Clients", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"+", "$SYS", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/#", "$SYS", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"$SYS/+/Clients", "$SYS/monitor/Clients", true},
      {"$SYS", "$SYS", true},
      {"a/#", "a/$SYS", true},  // the rule is about the first level only
      {"+/$x", "a/$x", true},
      {"#", "a$", true},
  };
  for (const MatchCase& c : cases) {
    EXPECT_EQ(topic_matches(c.filter, c.topic), c.matches)
        << "filter '" << c.filter << "' topic '" << c.topic << "'";
  }
}

}  // namespace
}  // namespace starling::mqtt
