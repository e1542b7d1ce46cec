#include "broker/retained_store.h"

#include <string>
#include <unordered_map>
#include <utility>

namespace starling::broker {

namespace {

// Transparent so lookups with a string_view level do not build a std::string.
struct LevelHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Offset of the level after the one starting at pos; s.size() + 1 once s is consumed.
size_t next_level(std::string_view s, size_t pos, std::string_view& level) {
  const size_t slash = s.find('/', pos);
  if (slash == std::string_view::npos) {
    level = s.substr(pos);
    return s.size() + 1;
  }
  level = s.substr(pos, slash - pos);
  return slash + 1;
}

}  // namespace

struct RetainedStore::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, LevelHash, std::equal_to<>> children;
  MessagePtr msg;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Iterative teardown: topics may have tens of thousands of levels, too deep for the default
  // recursive unique_ptr destruction on a thread stack.
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
    for (auto& [level, child] : children)
      into.push_back(std::move(child));
    children.clear();
  }
};

RetainedStore::RetainedStore() : root_(std::make_unique<Node>()) {}
RetainedStore::~RetainedStore() = default;

void RetainedStore::set(MessagePtr msg) {
  if (!msg) return;
  if (msg->payload.empty()) {
    erase(msg->topic);
    return;
  }
  const std::string_view topic = msg->topic;
  Node* n = root_.get();
  const size_t done = topic.size() + 1;
  for (size_t pos = 0; pos != done;) {
    std::string_view level;
    pos = next_level(topic, pos, level);
    auto it = n->children.find(level);
    if (it == n->children.end()) {
      it = n->children.emplace(std::string(level), std::make_unique<Node>()).first;
    }
    n = it->second.get();
  }
  if (!n->msg) ++count_;
  n->msg = std::move(msg);
}

void RetainedStore::erase(std::string_view topic) {
  // The deepest node that stays when the branch below it goes: below it is a chain of
  // message-less single-child nodes, pruned together if the target ends up empty.
  Node* cut_parent = nullptr;
  decltype(Node::children)::iterator cut;

  Node* n = root_.get();
  const size_t done = topic.size() + 1;
  for (size_t pos = 0; pos != done;) {
    std::string_view level;
    pos = next_level(topic, pos, level);
    auto it = n->children.find(level);
    if (it == n->children.end()) return;
    if (n == root_.get() || n->msg || n->children.size() > 1) {
      cut_parent = n;
      cut = it;
    }
    n = it->second.get();
  }
  if (!n->msg) return;
  n->msg.reset();
  --count_;
  if (n->children.empty()) cut_parent->children.erase(cut);
}

void RetainedStore::match(std::string_view filter, Clock::time_point now,
                          std::vector<MessagePtr>& out) const {
  struct Frame {
    const Node* node;
    size_t pos;  // offset of the next filter level; filter.size() + 1 once all are consumed
  };
  const size_t done = filter.size() + 1;
  auto take = [&](const Node& n) {
    if (n.msg && !n.msg->expired(now)) out.push_back(n.msg);
  };

  std::vector<Frame> stack{{root_.get(), 0}};
  std::vector<const Node*> subtree;
  while (!stack.empty()) {
    const Frame f = stack.back();
    stack.pop_back();
    if (f.pos == done) {
      take(*f.node);
      continue;
    }
    // Wildcards in the first level skip '$' topics (section 4.7.2).
    const bool first = f.pos == 0;
    std::string_view level;
    const size_t next = next_level(filter, f.pos, level);
    if (level == "#") {
      // The node itself ("a/#" matches "a") and everything below it.
      take(*f.node);
      for (const auto& [name, child] : f.node->children) {
        if (!(first && name.starts_with('$'))) subtree.push_back(child.get());
      }
      while (!subtree.empty()) {
        const Node* n = subtree.back();
        subtree.pop_back();
        take(*n);
        for (const auto& [name, child] : n->children)
          subtree.push_back(child.get());
      }
    } else if (level == "+") {
      for (const auto& [name, child] : f.node->children) {
        if (!(first && name.starts_with('$'))) stack.push_back(Frame{child.get(), next});
      }
    } else {
      auto it = f.node->children.find(level);
      if (it != f.node->children.end()) stack.push_back(Frame{it->second.get(), next});
    }
  }
}

size_t RetainedStore::purge_expired(Clock::time_point now) {
  // Collect first, then erase by topic: erase already knows how to prune, and the walk must
  // not run over nodes it is freeing.
  std::vector<MessagePtr> expired;
  for_each([&](const MessagePtr& m) {
    if (m->expired(now)) expired.push_back(m);
  });
  for (const MessagePtr& m : expired)
    erase(m->topic);
  return expired.size();
}

void RetainedStore::for_each(const std::function<void(const MessagePtr&)>& visit) const {
  std::vector<const Node*> pending{root_.get()};
  while (!pending.empty()) {
    const Node* n = pending.back();
    pending.pop_back();
    if (n->msg) visit(n->msg);
    for (const auto& [level, child] : n->children)
      pending.push_back(child.get());
  }
}

size_t RetainedStore::node_count_for_testing() const {
  size_t count = 0;
  std::vector<const Node*> pending{root_.get()};
  while (!pending.empty()) {
    const Node* n = pending.back();
    pending.pop_back();
    ++count;
    for (const auto& [level, child] : n->children)
      pending.push_back(child.get());
  }
  return count - 1;  // the root always exists
}

}  // namespace starling::broker
