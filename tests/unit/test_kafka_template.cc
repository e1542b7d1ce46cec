// Templates of the Kafka rules: parsing (each direction's placeholders, literal braces, errors
// with their reason), expansion, and Kafka topic names made from expanded templates.
#include "config/kafka_template.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::kafka {
namespace {

using Dir = Template::Direction;
using Headers = std::vector<std::pair<std::string, std::string>>;

std::string to_kafka(std::string_view text, std::string_view topic, std::string_view client_id = "",
                     std::string_view username = "") {
  TemplateValues v;
  v.topic = topic;
  v.client_id = client_id;
  v.username = username;
  return Template::parse(text, Dir::ToKafka).expand(v);
}

std::string to_mqtt(std::string_view text, std::string_view kafka_topic, std::string_view key = "",
                    int32_t partition = -1, const Headers* headers = nullptr) {
  TemplateValues v;
  v.kafka_topic = kafka_topic;
  v.key = key;
  v.partition = partition;
  v.headers = headers;
  return Template::parse(text, Dir::ToMqtt).expand(v);
}

// Parses `text`, which must fail; returns the std::invalid_argument's what().
std::string error_of(std::string_view text, Dir direction) {
  try {
    Template::parse(text, direction);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

constexpr const char* kKafkaHint = "use {topic}, {topic[N]}, {clientid} or {username}";
constexpr const char* kMqttHint = "use {kafka_topic}, {key}, {partition} or {header.NAME}";

// ---------------------------------------------------------------------------------------------
// MQTT to Kafka.

TEST(TemplateToKafka, EveryPlaceholder) {
  EXPECT_EQ(to_kafka("{topic}", "site/a/temp"), "site/a/temp");
  EXPECT_EQ(to_kafka("{clientid}", "t", "dev-1"), "dev-1");
  EXPECT_EQ(to_kafka("{username}", "t", "dev-1", "alice"), "alice");
  EXPECT_EQ(to_kafka("{topic[0]}", "site/a/temp"), "site");
  EXPECT_EQ(to_kafka("{topic[1]}", "site/a/temp"), "a");
  EXPECT_EQ(to_kafka("{topic[2]}", "site/a/temp"), "temp");
  EXPECT_EQ(to_kafka("sensors.{topic[1]}.{clientid}-{username}", "site/a/temp", "c", "u"),
            "sensors.a.c-u");
  // Placeholders side by side, and repeated.
  EXPECT_EQ(to_kafka("{topic[2]}{topic[0]}{topic[2]}", "x/y/z"), "zxz");
  // Leading zeros are still a number.
  EXPECT_EQ(to_kafka("{topic[01]}", "x/y/z"), "y");
}

TEST(TemplateToKafka, MissingValuesExpandToNothing) {
  EXPECT_EQ(to_kafka("a-{clientid}-{username}-b", "t"), "a---b");
  EXPECT_EQ(to_kafka("{topic}", ""), "");
}

TEST(TemplateToKafka, LevelsOutOfRangeAreEmpty) {
  EXPECT_EQ(to_kafka("{topic[3]}", "site/a/temp"), "");
  EXPECT_EQ(to_kafka("<{topic[1]}>", "single"), "<>");
  EXPECT_EQ(to_kafka("{topic[65535]}", "a/b"), "");
  EXPECT_EQ(to_kafka("{topic[0]}", ""), "");
  EXPECT_EQ(to_kafka("{topic[1]}", ""), "");
}

TEST(TemplateToKafka, EmptyLevels) {
  // MQTT levels may be empty: "/a" has "" then "a"; "a//b" has an empty middle level.
  EXPECT_EQ(to_kafka("<{topic[0]}>", "/a"), "<>");
  EXPECT_EQ(to_kafka("{topic[1]}", "/a"), "a");
  EXPECT_EQ(to_kafka("<{topic[1]}>", "a//b"), "<>");
  EXPECT_EQ(to_kafka("{topic[2]}", "a//b"), "b");
  EXPECT_EQ(to_kafka("<{topic[1]}>", "a/"), "<>");
  EXPECT_EQ(to_kafka("<{topic[2]}>", "a/"), "<>");
}

TEST(TemplateToKafka, LiteralBraces) {
  EXPECT_EQ(to_kafka("{{", "t"), "{");
  EXPECT_EQ(to_kafka("}}", "t"), "}");
  EXPECT_EQ(to_kafka("{{topic}}", "site/a"), "{topic}");
  EXPECT_EQ(to_kafka("{{{topic}}}", "site/a"), "{site/a}");
  EXPECT_EQ(to_kafka("a{{b}}c{topic[0]}", "x/y"), "a{b}cx");
}

TEST(TemplateToKafka, OtherDirectionPlaceholdersAreUnknown) {
  for (const char* name : {"kafka_topic", "key", "partition", "header.site"}) {
    std::string text = "{" + std::string(name) + "}";
    EXPECT_EQ(error_of(text, Dir::ToKafka),
              "unknown placeholder " + text + "; " + std::string(kKafkaHint));
  }
}

TEST(TemplateToKafka, UnknownPlaceholders) {
  EXPECT_EQ(error_of("{clientd}", Dir::ToKafka),
            "unknown placeholder {clientd}; " + std::string(kKafkaHint));
  EXPECT_EQ(error_of("a.{}", Dir::ToKafka), "unknown placeholder {}; " + std::string(kKafkaHint));
  // Names are case-sensitive.
  EXPECT_EQ(error_of("{Topic}", Dir::ToKafka),
            "unknown placeholder {Topic}; " + std::string(kKafkaHint));
  // A '{' inside a placeholder is part of its name.
  EXPECT_EQ(error_of("{a{topic}", Dir::ToKafka),
            "unknown placeholder {a{topic}; " + std::string(kKafkaHint));
  // The first bad placeholder is the one reported.
  EXPECT_EQ(error_of("{topic}.{x}.{y}", Dir::ToKafka),
            "unknown placeholder {x}; " + std::string(kKafkaHint));
}

TEST(TemplateToKafka, BadLevels) {
  for (const char* level : {"x", "", "-1", "+1", " 1", "1 ", "1x", "0x1", "1.0", "65536",
                            "4294967296", "99999999999999999999"}) {
    std::string name = "topic[" + std::string(level) + "]";
    EXPECT_EQ(error_of("{" + name + "}", Dir::ToKafka),
              "{" + name + "}: the level must be a number from 0, as in {topic[1]}")
        << level;
  }
  // Not of the form topic[...]: unknown.
  EXPECT_EQ(error_of("{topic[1}", Dir::ToKafka),
            "unknown placeholder {topic[1}; " + std::string(kKafkaHint));
  EXPECT_EQ(error_of("{topic1]}", Dir::ToKafka),
            "unknown placeholder {topic1]}; " + std::string(kKafkaHint));
}

TEST(TemplateToKafka, LargestLevelIsAccepted) {
  EXPECT_NO_THROW(Template::parse("{topic[65535]}", Dir::ToKafka));
}

// ---------------------------------------------------------------------------------------------
// Kafka to MQTT.

TEST(TemplateToMqtt, EveryPlaceholder) {
  Headers headers = {{"site", "paris"}, {"kind", "cmd"}};
  EXPECT_EQ(to_mqtt("{kafka_topic}", "commands.v1"), "commands.v1");
  EXPECT_EQ(to_mqtt("devices/{key}/cmd", "t", "dev-7"), "devices/dev-7/cmd");
  EXPECT_EQ(to_mqtt("p/{partition}", "t", "", 3), "p/3");
  EXPECT_EQ(to_mqtt("{header.site}", "t", "", 0, &headers), "paris");
  EXPECT_EQ(to_mqtt("{kafka_topic}/{header.site}/{key}/{partition}/{header.kind}", "orders", "k",
                    12, &headers),
            "orders/paris/k/12/cmd");
}

TEST(TemplateToMqtt, Partitions) {
  EXPECT_EQ(to_mqtt("{partition}", "t", "", 0), "0");
  EXPECT_EQ(to_mqtt("{partition}", "t", "", 2147483647), "2147483647");
  // The default of TemplateValues: no partition known.
  EXPECT_EQ(to_mqtt("{partition}", "t"), "-1");
}

TEST(TemplateToMqtt, KeyMayBeBinaryOrEmpty) {
  EXPECT_EQ(to_mqtt("k/{key}", "t", ""), "k/");
  std::string binary("a\0b", 3);
  EXPECT_EQ(to_mqtt("{key}", "t", binary), binary);
}

TEST(TemplateToMqtt, HeaderLookup) {
  Headers headers = {{"site", "first"}, {"Site", "upper"}, {"site", "second"}, {"empty", ""}};
  // The first header of that name wins.
  EXPECT_EQ(to_mqtt("{header.site}", "t", "", 0, &headers), "first");
  // Names are case-sensitive.
  EXPECT_EQ(to_mqtt("{header.Site}", "t", "", 0, &headers), "upper");
  // A missing header, an empty one, and no headers at all expand to nothing.
  EXPECT_EQ(to_mqtt("<{header.missing}>", "t", "", 0, &headers), "<>");
  EXPECT_EQ(to_mqtt("<{header.empty}>", "t", "", 0, &headers), "<>");
  EXPECT_EQ(to_mqtt("<{header.site}>", "t", "", 0, nullptr), "<>");
  Headers none;
  EXPECT_EQ(to_mqtt("<{header.site}>", "t", "", 0, &none), "<>");
  // Everything after "header." is the name, dots included.
  Headers dotted = {{"mqtt.client_id", "c1"}};
  EXPECT_EQ(to_mqtt("{header.mqtt.client_id}", "t", "", 0, &dotted), "c1");
}

TEST(TemplateToMqtt, LiteralBraces) {
  EXPECT_EQ(to_mqtt("{{key}}/{key}", "t", "k"), "{key}/k");
  EXPECT_EQ(to_mqtt("a/{{}}", "t"), "a/{}");
}

TEST(TemplateToMqtt, OtherDirectionPlaceholdersAreUnknown) {
  for (const char* name : {"topic", "topic[0]", "clientid", "username"}) {
    std::string text = "{" + std::string(name) + "}";
    EXPECT_EQ(error_of(text, Dir::ToMqtt),
              "unknown placeholder " + text + "; " + std::string(kMqttHint));
  }
}

TEST(TemplateToMqtt, UnknownPlaceholders) {
  EXPECT_EQ(error_of("{kafkatopic}", Dir::ToMqtt),
            "unknown placeholder {kafkatopic}; " + std::string(kMqttHint));
  // A header needs a name.
  EXPECT_EQ(error_of("{header.}", Dir::ToMqtt),
            "unknown placeholder {header.}; " + std::string(kMqttHint));
  EXPECT_EQ(error_of("{header}", Dir::ToMqtt),
            "unknown placeholder {header}; " + std::string(kMqttHint));
  EXPECT_EQ(error_of("{headers.site}", Dir::ToMqtt),
            "unknown placeholder {headers.site}; " + std::string(kMqttHint));
}

// ---------------------------------------------------------------------------------------------
// Brace errors, both directions.

TEST(TemplateErrors, LoneClosingBrace) {
  for (Dir d : {Dir::ToKafka, Dir::ToMqtt}) {
    EXPECT_EQ(error_of("}", d), "a lone '}' (write '}}' for a literal brace)");
    EXPECT_EQ(error_of("a}b", d), "a lone '}' (write '}}' for a literal brace)");
    EXPECT_EQ(error_of("}}}", d), "a lone '}' (write '}}' for a literal brace)");
  }
  // A placeholder followed by a single '}'.
  EXPECT_EQ(error_of("{topic}}", Dir::ToKafka), "a lone '}' (write '}}' for a literal brace)");
  EXPECT_EQ(error_of("{key}}", Dir::ToMqtt), "a lone '}' (write '}}' for a literal brace)");
}

TEST(TemplateErrors, UnclosedBrace) {
  for (Dir d : {Dir::ToKafka, Dir::ToMqtt}) {
    EXPECT_EQ(error_of("{", d), "a '{' without its '}'");
    EXPECT_EQ(error_of("a.{", d), "a '{' without its '}'");
    EXPECT_EQ(error_of("{{{", d), "a '{' without its '}'");
  }
  EXPECT_EQ(error_of("{topic", Dir::ToKafka), "a '{' without its '}'");
  EXPECT_EQ(error_of("{key}/{partition", Dir::ToMqtt), "a '{' without its '}'");
}

// ---------------------------------------------------------------------------------------------
// constant(), uses_key(), text().

TEST(TemplateProperties, Constant) {
  EXPECT_TRUE(Template().constant());
  EXPECT_TRUE(Template::parse("", Dir::ToKafka).constant());
  EXPECT_TRUE(Template::parse("sensors", Dir::ToKafka).constant());
  EXPECT_TRUE(Template::parse("a/b/c", Dir::ToMqtt).constant());
  EXPECT_TRUE(Template::parse("{{topic}}", Dir::ToKafka).constant());
  EXPECT_TRUE(Template::parse("a{{b}}c", Dir::ToMqtt).constant());
  EXPECT_FALSE(Template::parse("{topic}", Dir::ToKafka).constant());
  EXPECT_FALSE(Template::parse("a.{topic[1]}", Dir::ToKafka).constant());
  EXPECT_FALSE(Template::parse("{clientid}.x", Dir::ToKafka).constant());
  EXPECT_FALSE(Template::parse("{partition}", Dir::ToMqtt).constant());
  EXPECT_FALSE(Template::parse("x/{header.a}/y", Dir::ToMqtt).constant());
}

TEST(TemplateProperties, ConstantExpansionUnescapesBraces) {
  // text() is the template as written; expand() and literal() turn "{{" and "}}" into braces
  // (the bridge publishes a constant template's literal()).
  Template t = Template::parse("cmd/{{x}}", Dir::ToMqtt);
  ASSERT_TRUE(t.constant());
  EXPECT_EQ(t.text(), "cmd/{{x}}");
  EXPECT_EQ(t.expand({}), "cmd/{x}");
  EXPECT_EQ(t.literal(), "cmd/{x}");
  EXPECT_EQ(Template::parse("", Dir::ToMqtt).literal(), "");
  // Without braces, a constant's expansion is its text.
  Template plain = Template::parse("sensors.all", Dir::ToKafka);
  EXPECT_EQ(plain.expand({}), plain.text());
}

TEST(TemplateProperties, UsesKey) {
  EXPECT_TRUE(Template::parse("{key}", Dir::ToMqtt).uses_key());
  EXPECT_TRUE(Template::parse("devices/{key}/cmd", Dir::ToMqtt).uses_key());
  EXPECT_FALSE(Template::parse("{kafka_topic}/{partition}", Dir::ToMqtt).uses_key());
  EXPECT_FALSE(Template::parse("{{key}}", Dir::ToMqtt).uses_key());
  EXPECT_FALSE(Template::parse("{header.key}", Dir::ToMqtt).uses_key());
  EXPECT_FALSE(Template::parse("{clientid}", Dir::ToKafka).uses_key());
  EXPECT_FALSE(Template().uses_key());
}

TEST(TemplateProperties, TextIsTheSource) {
  for (const char* text : {"", "x", "{topic}.{{y}}", "a{topic[3]}b"}) {
    EXPECT_EQ(Template::parse(text, Dir::ToKafka).text(), text);
  }
  EXPECT_EQ(Template::parse("{key}/{header.a}", Dir::ToMqtt).text(), "{key}/{header.a}");
}

TEST(TemplateProperties, ParsedOnceExpandedMany) {
  Template t = Template::parse("s.{topic[0]}.{clientid}", Dir::ToKafka);
  TemplateValues a;
  a.topic = "x/y";
  a.client_id = "c1";
  TemplateValues b;
  b.topic = "z";
  b.client_id = "c2";
  EXPECT_EQ(t.expand(a), "s.x.c1");
  EXPECT_EQ(t.expand(b), "s.z.c2");
  EXPECT_EQ(t.expand(a), "s.x.c1");
}

// ---------------------------------------------------------------------------------------------
// Kafka topic names.

TEST(KafkaTopicName, MapsSlashesAndRefusedCharacters) {
  EXPECT_EQ(kafka_topic_name("site/a/temp"), "site.a.temp");
  EXPECT_EQ(kafka_topic_name("Az09._-"), "Az09._-");
  EXPECT_EQ(kafka_topic_name("a b#c+d$e:f"), "a_b_c_d_e_f");
  EXPECT_EQ(kafka_topic_name("/a//b/"), ".a..b.");
  EXPECT_EQ(kafka_topic_name(std::string("a\0b", 3)), "a_b");
  // Each byte of a multi-byte UTF-8 character becomes one '_'.
  EXPECT_EQ(kafka_topic_name("caf\xC3\xA9"), "caf__");
  EXPECT_EQ(kafka_topic_name(""), "_");  // Kafka refuses an empty name
}

TEST(KafkaTopicName, TruncatesTo249) {
  std::string long_name(300, 'a');
  EXPECT_EQ(kafka_topic_name(long_name), std::string(249, 'a'));
  EXPECT_EQ(kafka_topic_name(std::string(249, 'b')), std::string(249, 'b'));
  EXPECT_EQ(kafka_topic_name(std::string(250, '/')), std::string(249, '.'));
  EXPECT_TRUE(valid_kafka_topic(kafka_topic_name(std::string(1000, 'x'))));
  EXPECT_TRUE(valid_kafka_topic(kafka_topic_name(std::string(260, ' '))));
}

// "", "." and ".." are refused by Kafka: the mapping turns them into underscores.
TEST(KafkaTopicName, DotsOnlyBecomeValidNames) {
  for (const char* expanded : {"/", "//", ".", ".."}) {
    EXPECT_TRUE(valid_kafka_topic(kafka_topic_name(expanded)))
        << "\"" << expanded << "\" -> \"" << kafka_topic_name(expanded) << "\"";
  }
}

TEST(ValidKafkaTopic, EdgeCases) {
  EXPECT_TRUE(valid_kafka_topic("a"));
  EXPECT_TRUE(valid_kafka_topic("sensors.site-1_temp"));
  EXPECT_TRUE(valid_kafka_topic("ABCxyz0189._-"));
  EXPECT_TRUE(valid_kafka_topic("..."));
  EXPECT_TRUE(valid_kafka_topic(".a"));
  EXPECT_TRUE(valid_kafka_topic("_"));
  EXPECT_TRUE(valid_kafka_topic("-"));
  EXPECT_FALSE(valid_kafka_topic(""));
  EXPECT_FALSE(valid_kafka_topic("."));
  EXPECT_FALSE(valid_kafka_topic(".."));
  EXPECT_TRUE(valid_kafka_topic(std::string(249, 'a')));
  EXPECT_FALSE(valid_kafka_topic(std::string(250, 'a')));
  EXPECT_TRUE(valid_kafka_topic(std::string(249, '.')));
  for (const char* bad :
       {"a b", "a/b", "a+b", "a#b", "a:b", "a,b", "a{b}", "caf\xC3\xA9", "tab\t", "$SYS"}) {
    EXPECT_FALSE(valid_kafka_topic(bad)) << bad;
  }
  EXPECT_FALSE(valid_kafka_topic(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace starling::kafka
