// The cluster's pieces that need no Kafka: its record formats and the route table.
#include <gtest/gtest.h>

#include <algorithm>

#include "cluster/route_table.h"
#include "cluster/wire/records.h"

namespace starling::cluster {
namespace {

TEST(ClusterRecords, MessageRoundTrip) {
  MessageRecord r;
  r.topic = "a/b";
  r.payload = std::string("\0x\xff", 3);
  r.qos = 2;
  r.retain = true;
  r.expiry_s = 60;
  r.payload_format_indicator = 1;
  r.content_type = "text/plain";
  r.response_topic = "re/ply";
  r.correlation_data = "id";
  r.user_properties = {{"k", "v"}, {"k", "w"}};
  r.origin_client_id = "c1";
  r.origin_username = "u";
  r.origin_node = "n1";
  r.sent_us = 1234567;
  r.plain = false;
  r.groups = {"$share/g/a/#", "$share/h/+/b"};
  MessageRecord back;
  ASSERT_TRUE(decode(encode(r), back));
  EXPECT_EQ(back, r);
  EXPECT_EQ(inbox_kind(encode(r)), InboxKind::Message);
  // The destinations and a single client (a message passed on after its session moved).
  r.also = {"n2", "n3"};
  r.client = "moved";
  ASSERT_TRUE(decode(encode(r), back));
  EXPECT_EQ(back, r);
  r.also.clear();
  ASSERT_TRUE(decode(encode(r), back));
  EXPECT_EQ(back, r);
}

TEST(ClusterRecords, OtherRecordsRoundTrip) {
  HeartbeatRecord hb{42, 43, 1000, "127.0.0.1:8080", true, {{0, 17}, {3, -1}}, {{1, 5}}};
  HeartbeatRecord hb2;
  ASSERT_TRUE(decode(encode(hb), hb2));
  EXPECT_EQ(hb2, hb);
  // A heartbeat of the build before the route barrier (no positions) still decodes.
  std::string old = encode(HeartbeatRecord{42, 43, 1000, "h", false, {}, {}});
  old.resize(old.size() - 8);
  HeartbeatRecord hb3;
  ASSERT_TRUE(decode(old, hb3));
  EXPECT_TRUE(hb3.routes_read.empty());
  // One of the build before the retained barrier (route positions only) too.
  std::string older = encode(HeartbeatRecord{42, 43, 1000, "h", false, {{0, 17}}, {}});
  older.resize(older.size() - 4);
  HeartbeatRecord hb4;
  ASSERT_TRUE(decode(older, hb4));
  EXPECT_EQ(hb4.routes_read.size(), 1u);
  EXPECT_TRUE(hb4.retained_read.empty());
  RouteRecord route{7, 3};
  RouteRecord route2;
  ASSERT_TRUE(decode(encode(route), route2));
  EXPECT_EQ(route2, route);
  ClaimRecord claim{"n2", 9, 10, true, 300};
  ClaimRecord claim2;
  ASSERT_TRUE(decode(encode(claim), claim2));
  EXPECT_EQ(claim2, claim);
  HandoverRecord h;
  h.client_id = "c";
  h.from_node = "n1";
  h.found = true;
  h.expiry_s = 600;
  h.subscriptions = {{"a/#", "opts"}};
  h.messages = {"m1", std::string("\0", 1)};
  h.inbound_qos2 = {1, 65535};
  HandoverRecord h2;
  ASSERT_TRUE(decode(encode(h), h2));
  EXPECT_EQ(h2, h);
  EXPECT_EQ(inbox_kind(encode(h)), InboxKind::Handover);
  h.more = true;  // one record of several
  ASSERT_TRUE(decode(encode(h), h2));
  EXPECT_EQ(h2, h);
}

TEST(ClusterRecords, RefusesWhatIsNotARecord) {
  MessageRecord m;
  m.topic = "t";
  std::string bytes = encode(m);
  MessageRecord out;
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_FALSE(decode(std::string_view(bytes).substr(0, cut), out)) << cut;
  EXPECT_FALSE(decode(bytes + "x", out));  // trailing bytes
  HeartbeatRecord hb;
  EXPECT_FALSE(decode(bytes, hb));  // another kind
  // A count far beyond the bytes left is refused without reserving for it.
  HandoverRecord h;
  h.client_id = "c";
  std::string hbytes = encode(h);
  hbytes[hbytes.size() - 12] = '\xff';
  HandoverRecord h2;
  EXPECT_FALSE(decode(hbytes, h2));
  EXPECT_EQ(inbox_kind(""), InboxKind::Unknown);
}

TEST(ClusterRecords, RouteKeys) {
  std::string_view node, filter;
  const std::string key = route_key("n1", "$share/g/a b/#");
  ASSERT_TRUE(parse_route_key(key, node, filter));
  EXPECT_EQ(node, "n1");
  EXPECT_EQ(filter, "$share/g/a b/#");
  EXPECT_FALSE(parse_route_key("n1", node, filter));
  EXPECT_FALSE(parse_route_key(" a", node, filter));
  EXPECT_FALSE(parse_route_key("n1 ", node, filter));
}

std::vector<NodeNumber> plain_nodes(const RouteTable& t, std::string_view topic) {
  RouteTable::Match m;
  t.match(topic, m);
  return m.plain;
}

TEST(RouteTable, MatchesLikeMqttFilters) {
  RouteTable t;
  ASSERT_TRUE(t.add(1, "a/b", 1));
  ASSERT_TRUE(t.add(2, "a/+", 1));
  ASSERT_TRUE(t.add(3, "a/#", 1));
  ASSERT_TRUE(t.add(4, "#", 1));
  ASSERT_TRUE(t.add(5, "+/b/c", 1));
  EXPECT_EQ(plain_nodes(t, "a/b"), (std::vector<NodeNumber>{1, 2, 3, 4}));
  EXPECT_EQ(plain_nodes(t, "a"), (std::vector<NodeNumber>{3, 4}));  // '#' matches the parent
  EXPECT_EQ(plain_nodes(t, "a/b/c"), (std::vector<NodeNumber>{3, 4, 5}));
  EXPECT_EQ(plain_nodes(t, "x/y"), (std::vector<NodeNumber>{4}));
  // '$' topics are not matched by a leading wildcard.
  EXPECT_EQ(plain_nodes(t, "$SYS/x"), (std::vector<NodeNumber>{}));
  EXPECT_EQ(t.routes(), 5u);
}

TEST(RouteTable, OneEntryPerNodeAndRemovalPrunes) {
  RouteTable t;
  t.add(1, "a/b", 1);
  t.add(1, "a/b", 1);
  t.add(2, "a/+", 1);
  EXPECT_EQ(t.routes(), 2u);
  EXPECT_EQ(plain_nodes(t, "a/b"), (std::vector<NodeNumber>{1, 2}));
  EXPECT_TRUE(t.remove(1, "a/b"));
  EXPECT_FALSE(t.remove(1, "a/b"));
  EXPECT_FALSE(t.remove(9, "x/y/z"));
  EXPECT_EQ(plain_nodes(t, "a/b"), (std::vector<NodeNumber>{2}));
  EXPECT_TRUE(t.remove(2, "a/+"));
  EXPECT_EQ(t.routes(), 0u);
  EXPECT_EQ(plain_nodes(t, "a/b"), (std::vector<NodeNumber>{}));
}

TEST(RouteTable, SharedGroupsCarryMemberCounts) {
  RouteTable t;
  ASSERT_TRUE(t.add(1, "$share/g/a/#", 2));
  ASSERT_TRUE(t.add(2, "$share/g/a/#", 1));
  ASSERT_TRUE(t.add(2, "$share/h/a/b", 1));
  EXPECT_FALSE(t.add(2, "$share/g", 1));  // no filter
  RouteTable::Match m;
  t.match("a/b", m);
  EXPECT_TRUE(m.plain.empty());
  ASSERT_EQ(m.groups.size(), 2u);
  auto g = std::find_if(m.groups.begin(), m.groups.end(),
                        [](const auto& x) { return *x.key == "$share/g/a/#"; });
  ASSERT_NE(g, m.groups.end());
  EXPECT_EQ(g->members, (std::vector<std::pair<NodeNumber, uint32_t>>{{1, 2}, {2, 1}}));
  // A new count replaces the old one; the last member's removal removes the group.
  t.add(1, "$share/g/a/#", 5);
  m.clear();
  t.match("a/x", m);
  ASSERT_EQ(m.groups.size(), 1u);
  EXPECT_EQ(m.groups[0].members, (std::vector<std::pair<NodeNumber, uint32_t>>{{1, 5}, {2, 1}}));
  t.remove(1, "$share/g/a/#");
  t.remove(2, "$share/g/a/#");
  m.clear();
  t.match("a/x", m);
  EXPECT_TRUE(m.groups.empty());
}

}  // namespace
}  // namespace starling::cluster
