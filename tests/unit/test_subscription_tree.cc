#include "broker/subscription_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

// Counts heap allocations so a test can check that match() makes none once the output vectors
// have capacity.
namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

// Out of line: inlined into callers, GCC 12 reports a false -Wmismatched-new-delete.
[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace starling::broker {
namespace {

// Session is only forward-declared: fake, never dereferenced, distinct pointers.
Session* session(uintptr_t i) {
  return reinterpret_cast<Session*>(uintptr_t{0x10} * (i + 1));
}

SubscriptionOptions opts(uint32_t id, uint8_t qos = 0) {
  SubscriptionOptions o;
  o.qos = qos;
  o.subscription_id = id;
  return o;
}

struct MatchResult {
  std::vector<Subscriber> subs;
  std::vector<SharedGroup*> groups;

  // (session, subscription id) pairs, sorted, for comparisons independent of trie order.
  std::vector<std::pair<Session*, uint32_t>> keys() const {
    std::vector<std::pair<Session*, uint32_t>> k;
    for (const Subscriber& s : subs)
      k.emplace_back(s.session, s.options.subscription_id);
    std::sort(k.begin(), k.end());
    return k;
  }
  std::vector<uint32_t> ids() const {
    std::vector<uint32_t> v;
    for (const Subscriber& s : subs)
      v.push_back(s.options.subscription_id);
    std::sort(v.begin(), v.end());
    return v;
  }
  std::vector<std::string> group_names() const {
    std::vector<std::string> v;
    for (const SharedGroup* g : groups)
      v.push_back(g->name);
    std::sort(v.begin(), v.end());
    return v;
  }
};

MatchResult match(const SubscriptionTree& tree, std::string_view topic) {
  MatchResult r;
  tree.match(topic, r.subs, r.groups);
  return r;
}

std::vector<uint32_t> ids(std::initializer_list<uint32_t> l) {
  std::vector<uint32_t> v(l);
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    const size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(pos));
      return out;
    }
    out.push_back(s.substr(pos, slash - pos));
    pos = slash + 1;
  }
}

// Brute-force reference for section 4.7, independent of both the trie and mqtt/topic.cc.
bool reference_matches(std::string_view filter, std::string_view topic) {
  const auto f = split(filter);
  const auto t = split(topic);
  if (topic.starts_with('$') && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // also zero remaining levels: "a/#" matches "a"
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

TEST(ReferenceMatcher, SanityChecks) {
  EXPECT_TRUE(reference_matches("sport/#", "sport"));
  EXPECT_TRUE(reference_matches("+/+", "/"));
  EXPECT_FALSE(reference_matches("#", "$SYS"));
  EXPECT_FALSE(reference_matches("+/a", "$x/a"));
  EXPECT_TRUE(reference_matches("a/+", "a/$x"));
  EXPECT_FALSE(reference_matches("a/+", "a"));
}

// --- Basic matching --------------------------------------------------------------------------

TEST(SubscriptionTree, EmptyTreeMatchesNothing) {
  SubscriptionTree tree;
  EXPECT_TRUE(match(tree, "a/b").subs.empty());
  EXPECT_EQ(tree.subscription_count(), 0u);
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
}

TEST(SubscriptionTree, ExactMatch) {
  SubscriptionTree tree;
  EXPECT_TRUE(tree.subscribe(session(1), "a/b/c", opts(1, 2)));
  auto r = match(tree, "a/b/c");
  ASSERT_EQ(r.subs.size(), 1u);
  EXPECT_EQ(r.subs[0].session, session(1));
  EXPECT_EQ(r.subs[0].options, opts(1, 2));
  EXPECT_TRUE(r.groups.empty());
  EXPECT_TRUE(match(tree, "a/b").subs.empty());
  EXPECT_TRUE(match(tree, "a/b/c/d").subs.empty());
  EXPECT_TRUE(match(tree, "a/b/x").subs.empty());
  EXPECT_TRUE(match(tree, "A/b/c").subs.empty());  // case sensitive
  EXPECT_TRUE(match(tree, "a/b/c/").subs.empty());
  EXPECT_EQ(tree.subscription_count(), 1u);
  EXPECT_EQ(tree.node_count_for_testing(), 3u);
}

TEST(SubscriptionTree, SingleLevelWildcard) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "a/+/c", opts(1));
  tree.subscribe(session(1), "+", opts(2));
  tree.subscribe(session(1), "+/+", opts(3));
  tree.subscribe(session(1), "a/+", opts(4));
  EXPECT_EQ(match(tree, "a/b/c").ids(), ids({1}));
  EXPECT_EQ(match(tree, "a//c").ids(), ids({1}));  // '+' matches an empty level
  EXPECT_TRUE(match(tree, "a/b/d/c").subs.empty());
  EXPECT_EQ(match(tree, "a/c").ids(), ids({3, 4}));
  EXPECT_EQ(match(tree, "x").ids(), ids({2}));
  EXPECT_EQ(match(tree, "/").ids(), ids({3}));
  EXPECT_EQ(match(tree, "a/").ids(), ids({3, 4}));
  EXPECT_EQ(match(tree, "a").ids(), ids({2}));  // "a/+" needs a second level
}

TEST(SubscriptionTree, MultiLevelWildcardIncludesParent) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "sport/#", opts(1));
  EXPECT_EQ(match(tree, "sport").ids(), ids({1}));
  EXPECT_EQ(match(tree, "sport/").ids(), ids({1}));
  EXPECT_EQ(match(tree, "sport/tennis").ids(), ids({1}));
  EXPECT_EQ(match(tree, "sport/tennis/player1/ranking").ids(), ids({1}));
  EXPECT_TRUE(match(tree, "sports").subs.empty());
  EXPECT_TRUE(match(tree, "x/sport").subs.empty());
  EXPECT_TRUE(match(tree, "/sport").subs.empty());
}

TEST(SubscriptionTree, HashAloneMatchesEverythingButDollar) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "#", opts(1));
  EXPECT_EQ(match(tree, "a").ids(), ids({1}));
  EXPECT_EQ(match(tree, "/").ids(), ids({1}));
  EXPECT_EQ(match(tree, "a/b/c").ids(), ids({1}));
  EXPECT_EQ(match(tree, "a/$SYS").ids(), ids({1}));
  EXPECT_TRUE(match(tree, "$SYS").subs.empty());
  EXPECT_TRUE(match(tree, "$SYS/broker/uptime").subs.empty());
  EXPECT_TRUE(match(tree, "$").subs.empty());
}

TEST(SubscriptionTree, DollarTopics) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "+/monitor/Clients", opts(1));
  tree.subscribe(session(1), "$SYS/monitor/+", opts(2));
  tree.subscribe(session(1), "$SYS/#", opts(3));
  tree.subscribe(session(1), "+", opts(4));
  tree.subscribe(session(1), "+/#", opts(5));
  tree.subscribe(session(1), "a/+", opts(6));
  tree.subscribe(session(1), "$SYS", opts(7));
  EXPECT_EQ(match(tree, "$SYS/monitor/Clients").ids(), ids({2, 3}));
  EXPECT_EQ(match(tree, "$SYS").ids(), ids({3, 7}));
  EXPECT_EQ(match(tree, "$other").ids(), ids({}));
  EXPECT_EQ(match(tree, "x/monitor/Clients").ids(), ids({1, 5}));
  EXPECT_EQ(match(tree, "a/$x").ids(), ids({5, 6}));  // the rule is about the first level only
  EXPECT_EQ(match(tree, "x$").ids(), ids({4, 5}));
}

TEST(SubscriptionTree, EmptyLevelsAreRealLevels) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "a//b", opts(1));
  tree.subscribe(session(1), "/a", opts(2));
  tree.subscribe(session(1), "a/", opts(3));
  tree.subscribe(session(1), "/#", opts(4));
  tree.subscribe(session(1), "+/a", opts(5));
  tree.subscribe(session(1), "a", opts(6));
  EXPECT_EQ(match(tree, "a//b").ids(), ids({1}));
  EXPECT_TRUE(match(tree, "a/b").subs.empty());
  EXPECT_EQ(match(tree, "/a").ids(), ids({2, 4, 5}));
  EXPECT_EQ(match(tree, "a/").ids(), ids({3}));
  EXPECT_EQ(match(tree, "a").ids(), ids({6}));
  EXPECT_EQ(match(tree, "/").ids(), ids({4}));
  EXPECT_EQ(match(tree, "//").ids(), ids({4}));
  EXPECT_EQ(tree.node_count_for_testing(), 8u);  // a, a/"", a//b; "", /a, /#; +, +/a
}

TEST(SubscriptionTree, OverlappingFiltersGiveOneEntryEach) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "a/+", opts(1));
  tree.subscribe(session(1), "a/#", opts(2));
  tree.subscribe(session(1), "a/b", opts(3));
  tree.subscribe(session(1), "#", opts(4));
  tree.subscribe(session(1), "+/+", opts(5));
  tree.subscribe(session(2), "a/b", opts(6));
  tree.subscribe(session(2), "a/c", opts(7));
  auto r = match(tree, "a/b");
  using P = std::pair<Session*, uint32_t>;
  EXPECT_EQ(r.keys(), (std::vector<P>{{session(1), 1},
                                      {session(1), 2},
                                      {session(1), 3},
                                      {session(1), 4},
                                      {session(1), 5},
                                      {session(2), 6}}));
}

TEST(SubscriptionTree, ResubscribeReplacesOptions) {
  SubscriptionTree tree;
  EXPECT_TRUE(tree.subscribe(session(1), "a/+", opts(1, 0)));
  EXPECT_TRUE(tree.subscribe(session(2), "a/+", opts(2, 0)));
  SubscriptionOptions o = opts(9, 2);
  o.no_local = true;
  o.retain_as_published = true;
  o.retain_handling = 2;
  EXPECT_FALSE(tree.subscribe(session(1), "a/+", o));
  EXPECT_EQ(tree.subscription_count(), 2u);
  auto r = match(tree, "a/x");
  ASSERT_EQ(r.subs.size(), 2u);
  for (const Subscriber& s : r.subs) {
    if (s.session == session(1)) {
      EXPECT_EQ(s.options, o);
    } else {
      EXPECT_EQ(s.options, opts(2, 0));
    }
  }
}

TEST(SubscriptionTree, UnsubscribeMissingReturnsFalse) {
  SubscriptionTree tree;
  EXPECT_FALSE(tree.unsubscribe(session(1), "a/b"));
  tree.subscribe(session(1), "a/b", opts(1));
  EXPECT_FALSE(tree.unsubscribe(session(2), "a/b"));  // other session
  EXPECT_FALSE(tree.unsubscribe(session(1), "a"));    // prefix node, no subscription there
  EXPECT_FALSE(tree.unsubscribe(session(1), "a/b/c"));
  EXPECT_FALSE(tree.unsubscribe(session(1), "a/+"));
  EXPECT_FALSE(tree.unsubscribe(session(1), "a/#"));
  EXPECT_FALSE(tree.unsubscribe(session(1), "$share/g/a/b"));  // normal one is not shared
  EXPECT_EQ(tree.subscription_count(), 1u);
  EXPECT_EQ(tree.node_count_for_testing(), 2u);
  EXPECT_TRUE(tree.unsubscribe(session(1), "a/b"));
  EXPECT_FALSE(tree.unsubscribe(session(1), "a/b"));
  EXPECT_EQ(tree.subscription_count(), 0u);
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
  EXPECT_TRUE(match(tree, "a/b").subs.empty());
}

TEST(SubscriptionTree, UnsubscribeLeavesOtherSessions) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "a/b", opts(1));
  tree.subscribe(session(2), "a/b", opts(2));
  tree.subscribe(session(3), "a/b", opts(3));
  EXPECT_TRUE(tree.unsubscribe(session(1), "a/b"));
  EXPECT_EQ(match(tree, "a/b").ids(), ids({2, 3}));
  EXPECT_EQ(tree.subscription_count(), 2u);
  EXPECT_EQ(tree.node_count_for_testing(), 2u);
}

// --- Shared subscriptions ----------------------------------------------------------------------

TEST(SubscriptionTree, SharedSameGroupIsOneGroup) {
  SubscriptionTree tree;
  EXPECT_TRUE(tree.subscribe(session(1), "$share/g/sensors/+", opts(1)));
  EXPECT_TRUE(tree.subscribe(session(2), "$share/g/sensors/+", opts(2)));
  EXPECT_EQ(tree.subscription_count(), 2u);
  auto r = match(tree, "sensors/t1");
  EXPECT_TRUE(r.subs.empty());  // shared members are not normal subscribers
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0]->name, "g");
  ASSERT_EQ(r.groups[0]->members.size(), 2u);
  EXPECT_EQ(r.groups[0]->members[0].session, session(1));  // subscription order
  EXPECT_EQ(r.groups[0]->members[1].session, session(2));
  EXPECT_TRUE(match(tree, "sensors").groups.empty());
  EXPECT_TRUE(match(tree, "other/t1").groups.empty());
}

TEST(SubscriptionTree, SharedDifferentGroupsAreSeparate) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "$share/g1/a/b", opts(1));
  tree.subscribe(session(2), "$share/g2/a/b", opts(2));
  tree.subscribe(session(1), "$share/g2/a/b", opts(3));  // same session, another group
  tree.subscribe(session(3), "a/b", opts(4));            // and a normal one on the filter
  EXPECT_EQ(tree.subscription_count(), 4u);
  auto r = match(tree, "a/b");
  EXPECT_EQ(r.ids(), ids({4}));
  EXPECT_EQ(r.group_names(), (std::vector<std::string>{"g1", "g2"}));
  for (const SharedGroup* g : r.groups)
    EXPECT_EQ(g->members.size(), g->name == "g1" ? 1u : 2u);
}

TEST(SubscriptionTree, SharedSameGroupOnDifferentFiltersIsTwoGroups) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "$share/g/a/+", opts(1));
  tree.subscribe(session(1), "$share/g/a/#", opts(2));
  auto r = match(tree, "a/b");
  ASSERT_EQ(r.groups.size(), 2u);
  EXPECT_NE(r.groups[0], r.groups[1]);
  EXPECT_EQ(r.group_names(), (std::vector<std::string>{"g", "g"}));
  EXPECT_EQ(match(tree, "a").groups.size(), 1u);  // only "a/#" by parent match
}

TEST(SubscriptionTree, SharedResubscribeReplaces) {
  SubscriptionTree tree;
  EXPECT_TRUE(tree.subscribe(session(1), "$share/g/t", opts(1, 0)));
  EXPECT_FALSE(tree.subscribe(session(1), "$share/g/t", opts(5, 1)));
  EXPECT_EQ(tree.subscription_count(), 1u);
  auto r = match(tree, "t");
  ASSERT_EQ(r.groups.size(), 1u);
  ASSERT_EQ(r.groups[0]->members.size(), 1u);
  EXPECT_EQ(r.groups[0]->members[0].options, opts(5, 1));
}

TEST(SubscriptionTree, SharedUnsubscribeRemovesMemberAndEmptyGroup) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "$share/g/t", opts(1));
  tree.subscribe(session(2), "$share/g/t", opts(2));
  tree.subscribe(session(3), "$share/g/t", opts(3));
  tree.subscribe(session(1), "$share/h/t", opts(4));
  SharedGroup* g = nullptr;
  for (SharedGroup* x : match(tree, "t").groups) {
    if (x->name == "g") g = x;
  }
  ASSERT_NE(g, nullptr);

  EXPECT_FALSE(tree.unsubscribe(session(4), "$share/g/t"));
  EXPECT_FALSE(tree.unsubscribe(session(1), "$share/x/t"));
  EXPECT_FALSE(tree.unsubscribe(session(1), "t"));  // not a normal subscriber
  EXPECT_TRUE(tree.unsubscribe(session(2), "$share/g/t"));
  ASSERT_EQ(g->members.size(), 2u);
  EXPECT_EQ(g->members[0].session, session(1));  // order kept
  EXPECT_EQ(g->members[1].session, session(3));

  // Pointer stability: more groups on the same node do not move g.
  for (uintptr_t i = 0; i < 100; ++i) {
    tree.subscribe(session(i), "$share/extra" + std::to_string(i) + "/t", opts(100));
  }
  bool still_there = false;
  for (SharedGroup* x : match(tree, "t").groups)
    still_there |= x == g;
  EXPECT_TRUE(still_there);
  for (uintptr_t i = 0; i < 100; ++i) {
    EXPECT_TRUE(tree.unsubscribe(session(i), "$share/extra" + std::to_string(i) + "/t"));
  }

  EXPECT_TRUE(tree.unsubscribe(session(1), "$share/g/t"));
  EXPECT_TRUE(tree.unsubscribe(session(3), "$share/g/t"));
  EXPECT_FALSE(tree.unsubscribe(session(3), "$share/g/t"));
  EXPECT_EQ(match(tree, "t").group_names(), (std::vector<std::string>{"h"}));
  EXPECT_EQ(tree.node_count_for_testing(), 1u);
  EXPECT_TRUE(tree.unsubscribe(session(1), "$share/h/t"));
  EXPECT_TRUE(match(tree, "t").groups.empty());
  EXPECT_EQ(tree.subscription_count(), 0u);
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
}

TEST(SubscriptionTree, SharedFilterFollowsDollarRule) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "$share/g/#", opts(1));
  tree.subscribe(session(1), "$share/g/$SYS/#", opts(2));
  EXPECT_EQ(match(tree, "a/b").groups.size(), 1u);
  auto r = match(tree, "$SYS/x");
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0]->members[0].options.subscription_id, 2u);
}

// --- Structure -------------------------------------------------------------------------------

TEST(SubscriptionTree, PruneKeepsSiblingsAndAncestorsInUse) {
  SubscriptionTree tree;
  tree.subscribe(session(1), "a/b", opts(1));
  tree.subscribe(session(1), "a/b/c/d", opts(2));
  tree.subscribe(session(1), "a/b/e", opts(3));
  tree.subscribe(session(1), "a/b/+/#", opts(4));
  EXPECT_EQ(tree.node_count_for_testing(), 7u);  // a b c d e + #
  EXPECT_TRUE(tree.unsubscribe(session(1), "a/b/c/d"));
  EXPECT_EQ(tree.node_count_for_testing(), 5u);
  EXPECT_TRUE(tree.unsubscribe(session(1), "a/b/+/#"));
  EXPECT_EQ(tree.node_count_for_testing(), 3u);
  EXPECT_TRUE(tree.unsubscribe(session(1), "a/b"));  // has a child: stays as a plain node
  EXPECT_EQ(tree.node_count_for_testing(), 3u);
  EXPECT_EQ(match(tree, "a/b/e").ids(), ids({3}));
  EXPECT_TRUE(match(tree, "a/b").subs.empty());
  EXPECT_TRUE(tree.unsubscribe(session(1), "a/b/e"));
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
}

TEST(SubscriptionTree, ChurnOf10kFiltersLeavesEmptyTree) {
  SubscriptionTree tree;
  std::mt19937 rng(7);
  std::vector<std::pair<Session*, std::string>> subs;
  for (int i = 0; i < 10000; ++i) {
    std::string filter;
    switch (i % 5) {
      case 0:
        filter = "dev/" + std::to_string(i) + "/temp";
        break;
      case 1:
        filter = "site/" + std::to_string(i % 97) + "/+/" + std::to_string(i);
        break;
      case 2:
        filter = "site/" + std::to_string(i) + "/#";
        break;
      case 3:
        filter = "$share/grp" + std::to_string(i % 7) + "/q/" + std::to_string(i);
        break;
      default:
        filter = "deep/" + std::to_string(i) + "/x/y/z//w/+";
        break;
    }
    Session* s = session(rng() % 50);
    ASSERT_TRUE(tree.subscribe(s, filter, opts(i)));
    subs.emplace_back(s, std::move(filter));
  }
  EXPECT_EQ(tree.subscription_count(), 10000u);
  EXPECT_GT(tree.node_count_for_testing(), 10000u);
  std::shuffle(subs.begin(), subs.end(), rng);
  for (const auto& [s, filter] : subs)
    ASSERT_TRUE(tree.unsubscribe(s, filter)) << filter;
  EXPECT_EQ(tree.subscription_count(), 0u);
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
}

// Many siblings under one node, removed in random order: every survivor must stay reachable
// through the node's child table as it shrinks (and every removed one must be gone).
TEST(SubscriptionTree, ManySiblingsSurviveRandomRemoval) {
  SubscriptionTree tree;
  constexpr int kSiblings = 5000;
  std::vector<int> order(kSiblings);
  for (int i = 0; i < kSiblings; ++i) {
    order[i] = i;
    tree.subscribe(session(1), "s/" + std::to_string(i), opts(i));
  }
  std::mt19937 rng(99);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> present(kSiblings, true);
  for (int k = 0; k < kSiblings; ++k) {
    ASSERT_TRUE(tree.unsubscribe(session(1), "s/" + std::to_string(order[k])));
    present[order[k]] = false;
    if (k % 250 == 0 || kSiblings - k < 20) {
      for (int i = 0; i < kSiblings; ++i) {
        const auto r = match(tree, "s/" + std::to_string(i));
        ASSERT_EQ(r.subs.size(), present[i] ? 1u : 0u) << "sibling " << i << " after " << k;
        if (present[i]) {
          ASSERT_EQ(r.subs[0].options.subscription_id, static_cast<uint32_t>(i));
        }
      }
    }
  }
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
}

TEST(SubscriptionTree, LargeFanOutOnOneFilter) {
  SubscriptionTree tree;
  constexpr uintptr_t kSessions = 20000;
  for (uintptr_t i = 0; i < kSessions; ++i) {
    ASSERT_TRUE(tree.subscribe(session(i), "broadcast", opts(static_cast<uint32_t>(i))));
  }
  EXPECT_FALSE(tree.subscribe(session(123), "broadcast", opts(123, 1)));
  EXPECT_EQ(match(tree, "broadcast").subs.size(), kSessions);
  for (uintptr_t i = 0; i < kSessions; i += 2)
    ASSERT_TRUE(tree.unsubscribe(session(i), "broadcast"));
  EXPECT_FALSE(tree.unsubscribe(session(0), "broadcast"));
  auto r = match(tree, "broadcast");
  ASSERT_EQ(r.subs.size(), kSessions / 2);
  std::set<Session*> seen;
  for (const Subscriber& s : r.subs) {
    const auto i = (reinterpret_cast<uintptr_t>(s.session) / 0x10) - 1;
    EXPECT_EQ(i % 2, 1u);
    EXPECT_EQ(s.options.subscription_id, i);
    EXPECT_EQ(s.options.qos, i == 123 ? 1 : 0);
    seen.insert(s.session);
  }
  EXPECT_EQ(seen.size(), kSessions / 2);
  // Down through the index's drop threshold and back.
  for (uintptr_t i = 1; i < kSessions - 6; i += 2)
    ASSERT_TRUE(tree.unsubscribe(session(i), "broadcast"));
  EXPECT_EQ(match(tree, "broadcast").subs.size(), 3u);
  for (uintptr_t i = 0; i < 40; ++i)
    tree.subscribe(session(i), "broadcast", opts(0));
  EXPECT_EQ(match(tree, "broadcast").subs.size(), 43u);
  EXPECT_EQ(tree.subscription_count(), 43u);
}

TEST(SubscriptionTree, MatchDoesNotAllocateWithCapacity) {
  SubscriptionTree tree;
  for (uintptr_t i = 0; i < 50; ++i) {
    const std::string n = std::to_string(i);
    tree.subscribe(session(i), "a/" + n + "/c", opts(1));
    tree.subscribe(session(i), "a/+/c", opts(2));
    tree.subscribe(session(i), "a/#", opts(3));
    tree.subscribe(session(i), "+/+/+", opts(4));
    tree.subscribe(session(i), "$share/g" + n + "/a/+/c", opts(5));
  }
  std::vector<Subscriber> out;
  std::vector<SharedGroup*> groups;
  out.reserve(1000);
  groups.reserve(100);
  const size_t before = g_allocations.load();
  for (int rep = 0; rep < 100; ++rep) {
    out.clear();
    groups.clear();
    tree.match("a/7/c", out, groups);
    tree.match("a/none/c", out, groups);
    tree.match("zzz/yyy", out, groups);
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(out.size(), 151u + 150u);
  EXPECT_EQ(groups.size(), 100u);
}

TEST(SubscriptionTree, DeepFiltersAndManyPendingBranches) {
  SubscriptionTree tree;
  // Exact path a/a/.../a with a '+' sibling at every level: 200 pending '+' branches, more
  // than the inline match stack holds.
  constexpr int kDepth = 200;
  std::vector<std::string> filters;
  for (int k = 0; k < kDepth; ++k) {
    std::string f;
    for (int i = 0; i < kDepth; ++i) {
      if (i) f += '/';
      f += i == k ? "+" : "a";
    }
    filters.push_back(f);
    tree.subscribe(session(1), f, opts(k));
  }
  std::string topic;
  for (int i = 0; i < kDepth; ++i)
    topic += i ? "/a" : "a";
  EXPECT_EQ(match(tree, topic).subs.size(), size_t{kDepth});
  for (const auto& f : filters)
    ASSERT_TRUE(tree.unsubscribe(session(1), f));
  EXPECT_EQ(tree.node_count_for_testing(), 0u);

  // A very deep filter must not overflow the stack on match or teardown.
  std::string deep;
  for (int i = 0; i < 100000; ++i)
    deep += "x/";
  deep += "#";
  tree.subscribe(session(1), deep, opts(1));
  tree.subscribe(session(2), deep.substr(0, deep.size() - 2), opts(2));
  EXPECT_EQ(match(tree, deep.substr(0, deep.size() - 2)).ids(), ids({1, 2}));
  EXPECT_EQ(match(tree, deep.substr(0, deep.size() - 1) + "y").ids(), ids({1}));
  EXPECT_TRUE(tree.unsubscribe(session(1), deep));
  EXPECT_EQ(tree.node_count_for_testing(), 100000u);
  // The destructor tears down the remaining 100k-level chain.
}

// --- Randomized comparison against the brute-force matcher ------------------------------------

std::string random_levels(std::mt19937& rng, const std::vector<std::string>& alphabet, int max) {
  const int n = 1 + static_cast<int>(rng() % max);
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += '/';
    s += alphabet[rng() % alphabet.size()];
  }
  return s;
}

TEST(SubscriptionTree, RandomizedAgainstBruteForce) {
  const std::vector<std::string> topic_levels = {"a", "b", "", "$x", "$SYS", "c"};
  const std::vector<std::string> filter_levels = {"a", "b", "", "$x", "+", "+", "$SYS"};
  std::mt19937 rng(12345);

  // Reference model: (session, full filter) -> subscription id; shared keyed with the group.
  std::map<std::pair<Session*, std::string>, uint32_t> model;
  SubscriptionTree tree;
  uint32_t next_id = 1;
  size_t checked_topics = 0;

  for (int round = 0; round < 3000; ++round) {
    // A few subscribes/unsubscribes per round.
    for (int op = 0; op < 3; ++op) {
      Session* s = session(rng() % 6);
      std::string filter = random_levels(rng, filter_levels, 4);
      if (rng() % 4 == 0) filter += "/#";
      if (rng() % 10 == 0) filter = "#";
      // "$share/g/" (empty filter) is invalid and would not be seen as shared: not generated.
      if (rng() % 5 == 0 && !filter.empty()) {
        filter = "$share/g" + std::to_string(rng() % 2) + "/" + filter;
      }
      const auto key = std::make_pair(s, filter);
      if (rng() % 3 == 0) {
        const bool had = model.erase(key) > 0;
        ASSERT_EQ(tree.unsubscribe(s, filter), had) << filter;
      } else if (rng() % 2 == 0 && !model.empty()) {
        // Unsubscribe something known to exist.
        auto it = model.begin();
        std::advance(it, rng() % model.size());
        ASSERT_TRUE(tree.unsubscribe(it->first.first, it->first.second)) << it->first.second;
        model.erase(it);
      } else {
        const bool fresh = !model.contains(key);
        const uint32_t id = next_id++;
        model[key] = id;
        ASSERT_EQ(tree.subscribe(s, filter, opts(id)), fresh) << filter;
      }
    }
    ASSERT_EQ(tree.subscription_count(), model.size());

    for (int q = 0; q < 3; ++q) {
      const std::string topic = random_levels(rng, topic_levels, 5);
      std::vector<uint32_t> want_normal;
      std::map<std::string, std::vector<uint32_t>> want_groups;  // "filter|group" -> member ids
      for (const auto& [key, id] : model) {
        const std::string& filter = key.second;
        if (filter.starts_with("$share/")) {
          const size_t slash = filter.find('/', 7);
          const std::string group = filter.substr(7, slash - 7);
          const std::string rest = filter.substr(slash + 1);
          if (reference_matches(rest, topic)) want_groups[rest + "|" + group].push_back(id);
        } else if (reference_matches(filter, topic)) {
          want_normal.push_back(id);
        }
      }
      std::sort(want_normal.begin(), want_normal.end());

      auto r = match(tree, topic);
      ASSERT_EQ(r.ids(), want_normal) << "topic " << topic;
      // Each group appears once; compare member id sets (member order is checked elsewhere).
      std::multiset<std::vector<uint32_t>> got_groups;
      std::set<const SharedGroup*> distinct(r.groups.begin(), r.groups.end());
      ASSERT_EQ(distinct.size(), r.groups.size()) << "topic " << topic;
      for (const SharedGroup* g : r.groups) {
        std::vector<uint32_t> m;
        for (const Subscriber& s : g->members)
          m.push_back(s.options.subscription_id);
        std::sort(m.begin(), m.end());
        got_groups.insert(m);
      }
      std::multiset<std::vector<uint32_t>> want_group_set;
      for (auto& [k, m] : want_groups) {
        std::sort(m.begin(), m.end());
        want_group_set.insert(m);
      }
      ASSERT_EQ(got_groups, want_group_set) << "topic " << topic;
      ++checked_topics;
    }
  }
  EXPECT_EQ(checked_topics, 9000u);

  for (const auto& [key, id] : model)
    ASSERT_TRUE(tree.unsubscribe(key.first, key.second));
  EXPECT_EQ(tree.subscription_count(), 0u);
  EXPECT_EQ(tree.node_count_for_testing(), 0u);
}

}  // namespace
}  // namespace starling::broker
