// The subscription tree: topic filters of all sessions in a trie keyed by topic level, with
// shared subscription groups ($share/{group}/{filter}) at the node of their filter.
//
// Not thread-safe by itself: the Router guards it with a reader/writer lock (publishes read,
// SUBSCRIBE/UNSUBSCRIBE write). A match never allocates once the caller's output vector has
// grown to its working size.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace starling::broker {

class Session;

struct SubscriptionOptions {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;  // 0 = none
  bool operator==(const SubscriptionOptions&) const = default;
};

struct Subscriber {
  Session* session = nullptr;
  SubscriptionOptions options;
};

// The members of one $share group on one filter. Members keep their subscription order;
// next picks round robin.
struct SharedGroup {
  std::string name;
  std::string key;  // the whole filter, "$share/{group}/{filter}": its name cluster-wide
  std::vector<Subscriber> members;
  std::atomic<uint32_t> next{0};  // round-robin cursor; advanced under the reader lock
};

class SubscriptionTree {
 public:
  SubscriptionTree();
  ~SubscriptionTree();
  SubscriptionTree(const SubscriptionTree&) = delete;
  SubscriptionTree& operator=(const SubscriptionTree&) = delete;

  // Adds or replaces the session's subscription on filter (shared filters included).
  // Returns true when it is new, false when an existing one was replaced.
  bool subscribe(Session* session, std::string_view filter, const SubscriptionOptions& options);

  // Removes it. Returns false when the session had no such subscription.
  bool unsubscribe(Session* session, std::string_view filter);

  // Collects every non-shared subscription matching topic into out (one entry per matching
  // filter, so a session may appear more than once) and every matching shared group into
  // groups. '$'-topics are not matched by filters starting with '+' or '#'. Appends; does not
  // clear.
  void match(std::string_view topic, std::vector<Subscriber>& out,
             std::vector<SharedGroup*>& groups) const;

  size_t subscription_count() const { return count_; }  // shared memberships included

  // Trie nodes below the root, counted by a full walk; lets tests check that unsubscribe prunes.
  size_t node_count_for_testing() const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t count_ = 0;
};

}  // namespace starling::broker
