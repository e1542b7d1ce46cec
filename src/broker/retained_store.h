// Retained messages by topic, in a trie keyed by topic level so a subscription's filter finds
// its retained messages without scanning them all.
//
// Not thread-safe by itself: the Router guards it with a reader/writer lock.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "broker/message.h"

namespace starling::broker {

class RetainedStore {
 public:
  RetainedStore();
  ~RetainedStore();
  RetainedStore(const RetainedStore&) = delete;
  RetainedStore& operator=(const RetainedStore&) = delete;

  // Stores msg under msg->topic, replacing what was there. An empty payload deletes instead
  // (and is not stored). Empty trie nodes are pruned.
  void set(MessagePtr msg);
  void erase(std::string_view topic);

  // Appends every retained message whose topic matches the (non-shared) filter; '$'-topics are
  // not matched by filters starting with '+' or '#'. Expired messages are skipped (and left for
  // purge_expired).
  void match(std::string_view filter, Clock::time_point now, std::vector<MessagePtr>& out) const;

  // Drops expired messages; returns how many.
  size_t purge_expired(Clock::time_point now);

  void for_each(const std::function<void(const MessagePtr&)>& visit) const;
  size_t size() const { return count_; }

  // Trie nodes below the root, counted by a full walk; lets tests check that erase prunes.
  size_t node_count_for_testing() const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t count_ = 0;
};

}  // namespace starling::broker
