#include "broker/retained_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace starling::broker {
namespace {

using std::chrono::seconds;

MessagePtr make(std::string topic, std::string payload) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  return m;
}

MessagePtr make_expiring(std::string topic, std::string payload, Clock::time_point at) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  m->has_expiry = true;
  m->expires_at = at;
  return m;
}

// Sorted topics of the messages matching filter.
std::vector<std::string> topics(const RetainedStore& store, std::string_view filter,
                                Clock::time_point now = Clock::now()) {
  std::vector<MessagePtr> out;
  store.match(filter, now, out);
  std::vector<std::string> t;
  for (const MessagePtr& m : out)
    t.push_back(m->topic);
  std::sort(t.begin(), t.end());
  return t;
}

using Topics = std::vector<std::string>;

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

// Brute-force reference for section 4.7, independent of the trie and of mqtt/topic.cc.
bool reference_matches(std::string_view filter, std::string_view topic) {
  const auto f = split(filter);
  const auto t = split(topic);
  if (topic.starts_with('$') && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

TEST(RetainedStore, Empty) {
  RetainedStore store;
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(topics(store, "#").empty());
  EXPECT_EQ(store.node_count_for_testing(), 0u);
  store.erase("a/b");  // no-op
  EXPECT_EQ(store.size(), 0u);
}

TEST(RetainedStore, SetReplaceAndDeleteOnEmptyPayload) {
  RetainedStore store;
  store.set(make("a/b", "one"));
  EXPECT_EQ(store.size(), 1u);
  store.set(make("a/b", "two"));
  EXPECT_EQ(store.size(), 1u);
  std::vector<MessagePtr> out;
  store.match("a/b", Clock::now(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->payload, "two");

  store.set(make("a/b", ""));  // deletes, is not stored
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(topics(store, "#").empty());
  EXPECT_EQ(store.node_count_for_testing(), 0u);

  store.set(make("x/y", ""));  // deleting something absent stores nothing
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.node_count_for_testing(), 0u);
  store.set(nullptr);
  EXPECT_EQ(store.size(), 0u);
}

TEST(RetainedStore, ExactMatch) {
  RetainedStore store;
  store.set(make("a/b/c", "1"));
  store.set(make("a/b", "1"));
  EXPECT_EQ(topics(store, "a/b/c"), (Topics{"a/b/c"}));
  EXPECT_EQ(topics(store, "a/b"), (Topics{"a/b"}));
  EXPECT_TRUE(topics(store, "a").empty());
  EXPECT_TRUE(topics(store, "a/b/c/d").empty());
  EXPECT_TRUE(topics(store, "a/x").empty());
}

TEST(RetainedStore, WildcardRetrieval) {
  RetainedStore store;
  for (const char* t :
       {"sport", "sport/tennis", "sport/tennis/p1", "sport/golf", "sports", "x/sport"}) {
    store.set(make(t, "p"));
  }
  EXPECT_EQ(topics(store, "sport/#"),
            (Topics{"sport", "sport/golf", "sport/tennis", "sport/tennis/p1"}));
  EXPECT_EQ(topics(store, "sport/+"), (Topics{"sport/golf", "sport/tennis"}));
  EXPECT_EQ(topics(store, "sport/+/p1"), (Topics{"sport/tennis/p1"}));
  EXPECT_EQ(topics(store, "+"), (Topics{"sport", "sports"}));
  EXPECT_EQ(topics(store, "+/sport"), (Topics{"x/sport"}));
  EXPECT_EQ(topics(store, "+/+"), (Topics{"sport/golf", "sport/tennis", "x/sport"}));
  EXPECT_EQ(topics(store, "+/#"), topics(store, "#"));
  EXPECT_EQ(topics(store, "#").size(), 6u);
  EXPECT_EQ(topics(store, "sport/tennis/#"), (Topics{"sport/tennis", "sport/tennis/p1"}));
  EXPECT_TRUE(topics(store, "sport/tennis/p1/+").empty());
  EXPECT_EQ(topics(store, "sport/tennis/p1/#"), (Topics{"sport/tennis/p1"}));
}

TEST(RetainedStore, DollarTopicsOnlyForExplicitFirstLevel) {
  RetainedStore store;
  store.set(make("$SYS/broker/uptime", "1"));
  store.set(make("$SYS", "1"));
  store.set(make("a/$x", "1"));
  store.set(make("a", "1"));
  EXPECT_EQ(topics(store, "#"), (Topics{"a", "a/$x"}));
  EXPECT_EQ(topics(store, "+"), (Topics{"a"}));
  EXPECT_EQ(topics(store, "+/broker/uptime"), Topics{});
  EXPECT_EQ(topics(store, "+/+"), (Topics{"a/$x"}));
  EXPECT_EQ(topics(store, "$SYS/#"), (Topics{"$SYS", "$SYS/broker/uptime"}));
  EXPECT_EQ(topics(store, "$SYS/+/uptime"), (Topics{"$SYS/broker/uptime"}));
  EXPECT_EQ(topics(store, "a/+"), (Topics{"a/$x"}));
  EXPECT_EQ(topics(store, "a/#"), (Topics{"a", "a/$x"}));
}

TEST(RetainedStore, EmptyLevels) {
  RetainedStore store;
  for (const char* t : {"a//b", "/a", "a/", "a", "/"})
    store.set(make(t, "p"));
  EXPECT_EQ(topics(store, "a//b"), (Topics{"a//b"}));
  EXPECT_EQ(topics(store, "a/+/b"), (Topics{"a//b"}));
  EXPECT_EQ(topics(store, "+/a"), (Topics{"/a"}));
  EXPECT_EQ(topics(store, "a/+"), (Topics{"a/"}));
  EXPECT_EQ(topics(store, "+/+"), (Topics{"/", "/a", "a/"}));
  EXPECT_EQ(topics(store, "/#"), (Topics{"/", "/a"}));
  EXPECT_EQ(topics(store, "a/#"), (Topics{"a", "a/", "a//b"}));
  EXPECT_EQ(store.size(), 5u);
}

TEST(RetainedStore, EraseKeepsRelativesAndPrunes) {
  RetainedStore store;
  store.set(make("a", "1"));
  store.set(make("a/b/c", "1"));
  store.set(make("a/b/d", "1"));
  EXPECT_EQ(store.node_count_for_testing(), 4u);
  store.erase("a");
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.node_count_for_testing(), 4u);  // a and b still lead to c and d
  store.erase("a/b");                             // not stored: no-op
  EXPECT_EQ(store.size(), 2u);
  store.erase("a/b/c");
  EXPECT_EQ(store.node_count_for_testing(), 3u);
  EXPECT_EQ(topics(store, "#"), (Topics{"a/b/d"}));
  store.erase("a/b/d");
  EXPECT_EQ(store.node_count_for_testing(), 0u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(RetainedStore, ExpiredSkippedThenPurged) {
  RetainedStore store;
  const Clock::time_point now = Clock::now();
  store.set(make_expiring("t/old", "1", now - seconds(1)));
  store.set(make_expiring("t/now", "1", now));  // expired at exactly its deadline
  store.set(make_expiring("t/later", "1", now + seconds(60)));
  store.set(make_expiring("deep/x/y/z", "1", now - seconds(5)));
  store.set(make("t", "1"));
  EXPECT_EQ(store.size(), 5u);
  EXPECT_EQ(topics(store, "#", now), (Topics{"t", "t/later"}));
  EXPECT_EQ(topics(store, "t/old", now), Topics{});
  EXPECT_EQ(topics(store, "t/+", now - seconds(2)), (Topics{"t/later", "t/now", "t/old"}));
  EXPECT_EQ(store.size(), 5u);  // match does not remove

  EXPECT_EQ(store.purge_expired(now), 3u);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(topics(store, "#", now - seconds(100)), (Topics{"t", "t/later"}));
  EXPECT_EQ(store.node_count_for_testing(), 2u);  // t, t/later; deep/... pruned
  EXPECT_EQ(store.purge_expired(now), 0u);
  EXPECT_EQ(store.purge_expired(now + seconds(60)), 1u);
  EXPECT_EQ(store.node_count_for_testing(), 1u);
}

TEST(RetainedStore, ForEachVisitsAll) {
  RetainedStore store;
  for (const char* t : {"a", "a/b", "$SYS/x", "/", "c/d/e"})
    store.set(make(t, "p"));
  std::vector<std::string> seen;
  store.for_each([&](const MessagePtr& m) { seen.push_back(m->topic); });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (Topics{"$SYS/x", "/", "a", "a/b", "c/d/e"}));
}

TEST(RetainedStore, DeepTopic) {
  RetainedStore store;
  std::string topic;
  for (int i = 0; i < 100000; ++i)
    topic += i ? "/x" : "x";
  store.set(make(topic, "p"));
  store.set(make("x", "p"));
  EXPECT_EQ(topics(store, "x/#").size(), 2u);
  EXPECT_EQ(topics(store, topic).size(), 1u);
  store.erase(topic);
  EXPECT_EQ(store.node_count_for_testing(), 1u);
  store.set(make(topic, "p"));  // left for the destructor to tear down
}

std::string random_levels(std::mt19937& rng, const std::vector<std::string>& alphabet, int max) {
  const int n = 1 + static_cast<int>(rng() % max);
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += '/';
    s += alphabet[rng() % alphabet.size()];
  }
  return s;
}

TEST(RetainedStore, RandomizedAgainstBruteForce) {
  const std::vector<std::string> topic_levels = {"a", "b", "", "$x", "$SYS"};
  const std::vector<std::string> filter_levels = {"a", "b", "", "$x", "+", "+"};
  std::mt19937 rng(4242);
  const Clock::time_point now = Clock::now();

  std::map<std::string, bool> model;  // topic -> expired
  RetainedStore store;
  for (int round = 0; round < 3000; ++round) {
    for (int op = 0; op < 2; ++op) {
      const std::string topic = random_levels(rng, topic_levels, 4);
      switch (rng() % 4) {
        case 0:
          store.set(make(topic, ""));
          model.erase(topic);
          break;
        case 1:
          store.set(make_expiring(topic, "p", now - seconds(1)));
          model[topic] = true;
          break;
        default:
          store.set(make(topic, "p"));
          model[topic] = false;
          break;
      }
    }
    ASSERT_EQ(store.size(), model.size());

    std::string filter = random_levels(rng, filter_levels, 4);
    if (rng() % 3 == 0) filter += "/#";
    if (rng() % 15 == 0) filter = "#";
    Topics want;
    for (const auto& [t, expired] : model) {
      if (!expired && reference_matches(filter, t)) want.push_back(t);
    }
    ASSERT_EQ(topics(store, filter, now), want) << "filter " << filter;
  }

  size_t expired = 0;
  for (const auto& [t, e] : model)
    expired += e ? 1 : 0;
  EXPECT_EQ(store.purge_expired(now), expired);
  EXPECT_EQ(store.size(), model.size() - expired);
  for (const auto& [t, e] : model)
    store.erase(t);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.node_count_for_testing(), 0u);
}

}  // namespace
}  // namespace starling::broker
