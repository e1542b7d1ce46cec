#include "broker/subscription_tree.h"

#include <algorithm>
#include <array>
#include <functional>
#include <utility>

namespace starling::broker {

namespace {

constexpr std::string_view kSharePrefix = "$share/";

// Our own split of "$share/{group}/{filter}" (mirrors mqtt::split_shared_filter) so the tree
// does not depend on topic.cc. Malformed shared filters are left to the caller's validation;
// here they simply count as ordinary filters.
bool split_shared(std::string_view filter, std::string_view& group, std::string_view& rest) {
  if (!filter.starts_with(kSharePrefix)) return false;
  const std::string_view tail = filter.substr(kSharePrefix.size());
  const size_t slash = tail.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == tail.size()) return false;
  group = tail.substr(0, slash);
  rest = tail.substr(slash + 1);
  return true;
}

// Normal subscribers of a node get a Session* -> position index once they are this many, so
// a filter that every client subscribes to ("broadcast") does not make SUBSCRIBE quadratic.
constexpr size_t kIndexAt = 16;
constexpr size_t kDropIndexBelow = 8;  // hysteresis: do not rebuild on every churn at the edge

size_t hash_level(std::string_view level) {
  return std::hash<std::string_view>{}(level);
}

// The exact-level children of a node: open addressing with linear probing over a power-of-two
// array of {hash, child}; the child holds its level string. A lookup is one probe run in one
// array plus the child it lands on (which match visits next anyway), where std::unordered_map
// chases bucket -> previous node -> node and, with a transparent hash, re-hashes neighbours to
// find the bucket's end. A template only because Node is private to the tree.
template <typename N>
class ChildTable {
 public:
  ChildTable() = default;
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  N* find(std::string_view level, size_t hash) const {
    if (size_ == 0) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.node) return nullptr;
      if (s.hash == hash && s.node->level == level) return s.node.get();
    }
  }
  N* find(std::string_view level) const { return find(level, hash_level(level)); }

  // The child for level, created when missing.
  N* get_or_add(std::string_view level) {
    const size_t hash = hash_level(level);
    if (N* n = find(level, hash)) return n;
    if ((size_ + 1) * 4 > capacity() * 3) rehash(capacity() == 0 ? 4 : capacity() * 2);
    auto child = std::make_unique<N>();
    child->level = std::string(level);
    N* raw = child.get();
    place(Slot{hash, std::move(child)});
    ++size_;
    return raw;
  }

  void erase(std::string_view level) {
    if (size_ == 0) return;
    const size_t hash = hash_level(level);
    size_t i = hash & mask_;
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].node) return;
      if (slots_[i].hash == hash && slots_[i].node->level == level) break;
    }
    slots_[i] = Slot{};
    // Backward-shift deletion keeps probe runs unbroken without tombstones.
    for (size_t j = (i + 1) & mask_; slots_[j].node; j = (j + 1) & mask_) {
      const size_t home = slots_[j].hash & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = std::move(slots_[j]);
        i = j;
      }
    }
    --size_;
    // Give memory back after churn; the load after shrinking stays <= 1/2.
    if (size_ == 0) {
      slots_.reset();
      mask_ = 0;
    } else if (capacity() > 8 && size_ * 8 <= capacity()) {
      rehash(capacity() / 4);
    }
  }

  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < capacity(); ++i) {
      if (slots_[i].node) f(slots_[i].node.get());
    }
  }

  void take_all(std::vector<std::unique_ptr<N>>& into) {
    for (size_t i = 0; i < capacity(); ++i) {
      if (slots_[i].node) into.push_back(std::move(slots_[i].node));
    }
    slots_.reset();
    mask_ = 0;
    size_ = 0;
  }

 private:
  struct Slot {
    size_t hash = 0;
    std::unique_ptr<N> node;  // null = free
  };

  size_t capacity() const { return slots_ ? mask_ + 1 : 0; }

  void place(Slot s) {
    size_t i = s.hash & mask_;
    while (slots_[i].node)
      i = (i + 1) & mask_;
    slots_[i] = std::move(s);
  }

  void rehash(size_t new_capacity) {
    std::unique_ptr<Slot[]> old = std::move(slots_);
    const size_t old_capacity = old ? mask_ + 1 : 0;
    slots_ = std::make_unique<Slot[]>(new_capacity);
    mask_ = new_capacity - 1;
    for (size_t i = 0; i < old_capacity; ++i) {
      if (old[i].node) place(std::move(old[i]));
    }
  }

  std::unique_ptr<Slot[]> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace

struct SubscriptionTree::Node {
  std::string level;           // this node's key in its parent's table ("" for '+', '#')
  ChildTable<Node> children;   // exact levels
  std::unique_ptr<Node> plus;  // '+' level
  std::unique_ptr<Node> hash;  // '#' level
  std::vector<Subscriber> subscribers;
  std::unique_ptr<std::unordered_map<Session*, size_t>> index;  // only for large nodes
  std::vector<std::unique_ptr<SharedGroup>> groups;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Iterative teardown: a filter may have tens of thousands of levels, and the default
  // recursive unique_ptr destruction could overflow a thread stack.
  ~Node() {
    std::vector<std::unique_ptr<Node>> pending;
    take_children(pending);
    while (!pending.empty()) {
      std::unique_ptr<Node> n = std::move(pending.back());
      pending.pop_back();
      n->take_children(pending);
    }
  }

  void take_children(std::vector<std::unique_ptr<Node>>& into) {
    children.take_all(into);
    if (plus) into.push_back(std::move(plus));
    if (hash) into.push_back(std::move(hash));
  }

  size_t child_count() const { return children.size() + (plus ? 1 : 0) + (hash ? 1 : 0); }
  bool holds_subscriptions() const { return !subscribers.empty() || !groups.empty(); }
  bool empty() const { return !holds_subscriptions() && child_count() == 0; }

  size_t find_subscriber(Session* session) const {
    if (index) {
      auto it = index->find(session);
      return it == index->end() ? subscribers.size() : it->second;
    }
    for (size_t i = 0; i < subscribers.size(); ++i) {
      if (subscribers[i].session == session) return i;
    }
    return subscribers.size();
  }

  void add_subscriber(Session* session, const SubscriptionOptions& options) {
    subscribers.push_back(Subscriber{session, options});
    if (index) {
      index->emplace(session, subscribers.size() - 1);
    } else if (subscribers.size() >= kIndexAt) {
      index = std::make_unique<std::unordered_map<Session*, size_t>>();
      index->reserve(subscribers.size() * 2);
      for (size_t i = 0; i < subscribers.size(); ++i)
        index->emplace(subscribers[i].session, i);
    }
  }

  // Swap-and-pop: normal subscribers have no order to keep.
  void remove_subscriber(size_t i) {
    if (index) index->erase(subscribers[i].session);
    if (i + 1 != subscribers.size()) {
      subscribers[i] = subscribers.back();
      if (index) (*index)[subscribers[i].session] = i;
    }
    subscribers.pop_back();
    if (index && subscribers.size() < kDropIndexBelow) index.reset();
    if (subscribers.empty()) subscribers.shrink_to_fit();
  }

  SharedGroup* find_group(std::string_view name) const {
    for (const auto& g : groups) {
      if (g->name == name) return g.get();
    }
    return nullptr;
  }
};

// Helpers below are templates over the node type because Node is private to the tree.
namespace {

// Which of a parent's links a child hangs from.
enum class Edge : uint8_t { kExact, kPlus, kHash };

Edge edge_of(std::string_view level) {
  if (level == "+") return Edge::kPlus;
  if (level == "#") return Edge::kHash;
  return Edge::kExact;
}

template <typename Node>
Node* child_at(const Node& n, Edge edge, std::string_view level) {
  switch (edge) {
    case Edge::kPlus:
      return n.plus.get();
    case Edge::kHash:
      return n.hash.get();
    case Edge::kExact:
      break;
  }
  return n.children.find(level);
}

// Calls f(level) for every '/'-separated level of s; "" is one empty level, "a/" is two.
template <typename F>
void for_each_level(std::string_view s, F&& f) {
  size_t pos = 0;
  for (;;) {
    const size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) {
      f(s.substr(pos));
      return;
    }
    f(s.substr(pos, slash - pos));
    pos = slash + 1;
  }
}

// Pending branches of a match: a fixed buffer that covers any realistic topic depth, spilling
// to the heap only for pathological trees (a pending entry needs a '+' sibling at every level
// still open, so depth > kInline practically never happens).
template <typename Node>
class MatchStack {
 public:
  struct Frame {
    const Node* node;
    size_t pos;  // offset of the next topic level; topic.size() + 1 once all are consumed
  };

  void push(const Node* node, size_t pos) {
    if (size_ < kInline) {
      inline_[size_++] = Frame{node, pos};
    } else {
      spill_.push_back(Frame{node, pos});
    }
  }
  bool pop(Frame& f) {
    if (!spill_.empty()) {
      f = spill_.back();
      spill_.pop_back();
      return true;
    }
    if (size_ == 0) return false;
    f = inline_[--size_];
    return true;
  }

 private:
  static constexpr size_t kInline = 32;
  std::array<Frame, kInline> inline_;
  size_t size_ = 0;
  std::vector<Frame> spill_;
};

template <typename Node>
void collect(const Node& n, std::vector<Subscriber>& out, std::vector<SharedGroup*>& groups) {
  if (!n.subscribers.empty()) out.insert(out.end(), n.subscribers.begin(), n.subscribers.end());
  for (const auto& g : n.groups)
    groups.push_back(g.get());
}

}  // namespace

SubscriptionTree::SubscriptionTree() : root_(std::make_unique<Node>()) {}
SubscriptionTree::~SubscriptionTree() = default;

bool SubscriptionTree::subscribe(Session* session, std::string_view filter,
                                 const SubscriptionOptions& options) {
  std::string_view group_name;
  std::string_view rest;
  const bool shared = split_shared(filter, group_name, rest);
  if (!shared) rest = filter;

  Node* n = root_.get();
  for_each_level(rest, [&n](std::string_view level) {
    std::unique_ptr<Node>* slot = nullptr;
    switch (edge_of(level)) {
      case Edge::kPlus:
        slot = &n->plus;
        break;
      case Edge::kHash:
        slot = &n->hash;
        break;
      case Edge::kExact:
        n = n->children.get_or_add(level);
        return;
    }
    if (!*slot) *slot = std::make_unique<Node>();
    n = slot->get();
  });

  if (!shared) {
    const size_t i = n->find_subscriber(session);
    if (i != n->subscribers.size()) {
      n->subscribers[i].options = options;
      return false;
    }
    n->add_subscriber(session, options);
    ++count_;
    return true;
  }

  SharedGroup* g = n->find_group(group_name);
  if (!g) {
    auto fresh = std::make_unique<SharedGroup>();
    fresh->name = std::string(group_name);
    fresh->key = std::string(filter);
    g = fresh.get();
    n->groups.push_back(std::move(fresh));
  }
  for (Subscriber& m : g->members) {
    if (m.session == session) {
      m.options = options;
      return false;
    }
  }
  g->members.push_back(Subscriber{session, options});
  ++count_;
  return true;
}

bool SubscriptionTree::unsubscribe(Session* session, std::string_view filter) {
  std::string_view group_name;
  std::string_view rest;
  const bool shared = split_shared(filter, group_name, rest);
  if (!shared) rest = filter;

  // While descending, remember the deepest node that survives if the branch below it goes
  // away: everything under that point is a chain of otherwise empty single-child nodes, which
  // is what gets pruned if the target ends up empty.
  Node* cut_parent = nullptr;
  Edge cut_edge = Edge::kExact;
  std::string_view cut_level;

  Node* n = root_.get();
  bool found = true;
  for_each_level(rest, [&](std::string_view level) {
    if (!found) return;
    const Edge edge = edge_of(level);
    Node* child = child_at(*n, edge, level);
    if (!child) {
      found = false;
      return;
    }
    if (n == root_.get() || n->holds_subscriptions() || n->child_count() > 1) {
      cut_parent = n;
      cut_edge = edge;
      cut_level = level;
    }
    n = child;
  });
  if (!found) return false;

  if (!shared) {
    const size_t i = n->find_subscriber(session);
    if (i == n->subscribers.size()) return false;
    n->remove_subscriber(i);
  } else {
    auto git = std::find_if(n->groups.begin(), n->groups.end(),
                            [&](const auto& g) { return g->name == group_name; });
    if (git == n->groups.end()) return false;
    auto& members = (*git)->members;
    auto mit = std::find_if(members.begin(), members.end(),
                            [&](const Subscriber& m) { return m.session == session; });
    if (mit == members.end()) return false;
    members.erase(mit);  // keeps subscription order for round robin
    if (members.empty()) n->groups.erase(git);
  }
  --count_;

  if (n->empty()) {
    switch (cut_edge) {
      case Edge::kPlus:
        cut_parent->plus.reset();
        break;
      case Edge::kHash:
        cut_parent->hash.reset();
        break;
      case Edge::kExact:
        cut_parent->children.erase(cut_level);
        break;
    }
  }
  return true;
}

void SubscriptionTree::match(std::string_view topic, std::vector<Subscriber>& out,
                             std::vector<SharedGroup*>& groups) const {
  // Filters starting with a wildcard do not match '$' topics (section 4.7.2).
  const bool dollar = !topic.empty() && topic.front() == '$';
  const size_t done = topic.size() + 1;

  MatchStack<Node> stack;
  stack.push(root_.get(), 0);
  MatchStack<Node>::Frame f;
  while (stack.pop(f)) {
    const Node* n = f.node;
    size_t pos = f.pos;
    // Follow the exact path in this loop; only '+' branches go on the stack.
    for (;;) {
      if (pos == done) {
        collect(*n, out, groups);
        // "a/#" also matches "a".
        if (n->hash) collect(*n->hash, out, groups);
        break;
      }
      const bool wildcards = !(dollar && pos == 0);
      if (n->hash && wildcards) collect(*n->hash, out, groups);

      const size_t slash = topic.find('/', pos);
      const size_t level_end = slash == std::string_view::npos ? topic.size() : slash;
      const size_t next = slash == std::string_view::npos ? done : slash + 1;

      if (n->plus && wildcards) stack.push(n->plus.get(), next);
      n = n->children.find(topic.substr(pos, level_end - pos));
      if (!n) break;
      pos = next;
    }
  }
}

size_t SubscriptionTree::node_count_for_testing() const {
  size_t count = 0;
  std::vector<const Node*> pending{root_.get()};
  while (!pending.empty()) {
    const Node* n = pending.back();
    pending.pop_back();
    ++count;
    n->children.for_each([&](const Node* child) { pending.push_back(child); });
    if (n->plus) pending.push_back(n->plus.get());
    if (n->hash) pending.push_back(n->hash.get());
  }
  return count - 1;  // the root always exists
}

}  // namespace starling::broker
