#include "cluster/route_table.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace starling::cluster {

namespace {

// Calls f for each level of a topic or filter ("a//b" has an empty middle level).
template <typename F>
void for_each_level(std::string_view s, F&& f) {
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      f(s.substr(start));
      return;
    }
    f(s.substr(start, slash - start));
    start = slash + 1;
  }
}

// Lookups by string_view without a temporary string.
struct LevelHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Group {
  std::string key;
  std::map<NodeNumber, uint32_t> members;
  std::atomic<uint32_t> cursor{0};
};

}  // namespace

struct RouteTable::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, LevelHash, std::equal_to<>> children;
  std::unique_ptr<Node> plus;
  std::unique_ptr<Node> hash;
  std::vector<NodeNumber> plain;  // sorted
  std::vector<std::unique_ptr<Group>> groups;

  bool empty() const {
    return children.empty() && !plus && !hash && plain.empty() && groups.empty();
  }
};

RouteTable::RouteTable() : root_(std::make_unique<Node>()) {}
RouteTable::~RouteTable() = default;

namespace {

// "$share/g/f" -> ("g", "f"); false for a plain filter.
bool split_shared(std::string_view filter, std::string_view& group, std::string_view& rest) {
  constexpr std::string_view kShare = "$share/";
  if (!filter.starts_with(kShare)) return false;
  const std::string_view after = filter.substr(kShare.size());
  const size_t slash = after.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == after.size()) return false;
  group = after.substr(0, slash);
  rest = after.substr(slash + 1);
  return true;
}

}  // namespace

bool RouteTable::add(NodeNumber node, std::string_view filter, uint32_t members) {
  if (filter.empty()) return false;
  std::string_view group, rest = filter;
  const bool shared = split_shared(filter, group, rest);
  if (filter.starts_with("$share/") && !shared) return false;
  Node* n = root_.get();
  for_each_level(rest, [&n](std::string_view level) {
    std::unique_ptr<Node>* slot;
    if (level == "+") {
      slot = &n->plus;
    } else if (level == "#") {
      slot = &n->hash;
    } else {
      slot = &n->children[std::string(level)];
    }
    if (!*slot) *slot = std::make_unique<Node>();
    n = slot->get();
  });
  if (!shared) {
    auto it = std::lower_bound(n->plain.begin(), n->plain.end(), node);
    if (it != n->plain.end() && *it == node) return true;
    n->plain.insert(it, node);
    ++routes_;
    return true;
  }
  auto g = std::find_if(n->groups.begin(), n->groups.end(),
                        [filter](const auto& x) { return x->key == filter; });
  if (g == n->groups.end()) {
    n->groups.push_back(std::make_unique<Group>());
    n->groups.back()->key = std::string(filter);
    g = n->groups.end() - 1;
  }
  auto [at, fresh] = (*g)->members.insert_or_assign(node, std::max<uint32_t>(members, 1));
  if (fresh) ++routes_;
  return true;
}

bool RouteTable::remove(NodeNumber node, std::string_view filter) {
  std::string_view group, rest = filter;
  const bool shared = split_shared(filter, group, rest);
  // The path down, to prune empty nodes on the way back.
  std::vector<std::pair<Node*, std::string>> path;
  Node* n = root_.get();
  bool found = true;
  for_each_level(rest, [&](std::string_view level) {
    if (!found) return;
    Node* next = nullptr;
    if (level == "+") {
      next = n->plus.get();
    } else if (level == "#") {
      next = n->hash.get();
    } else {
      auto it = n->children.find(level);
      if (it != n->children.end()) next = it->second.get();
    }
    if (!next) {
      found = false;
      return;
    }
    path.emplace_back(n, std::string(level));
    n = next;
  });
  if (!found) return false;
  bool removed = false;
  if (!shared) {
    auto it = std::lower_bound(n->plain.begin(), n->plain.end(), node);
    if (it != n->plain.end() && *it == node) {
      n->plain.erase(it);
      removed = true;
    }
  } else {
    auto g = std::find_if(n->groups.begin(), n->groups.end(),
                          [filter](const auto& x) { return x->key == filter; });
    if (g != n->groups.end() && (*g)->members.erase(node) > 0) {
      removed = true;
      if ((*g)->members.empty()) n->groups.erase(g);
    }
  }
  if (!removed) return false;
  --routes_;
  // Prune from the leaf up.
  for (auto it = path.rbegin(); it != path.rend() && n->empty(); ++it) {
    Node* parent = it->first;
    const std::string& level = it->second;
    if (level == "+") {
      parent->plus.reset();
    } else if (level == "#") {
      parent->hash.reset();
    } else {
      parent->children.erase(parent->children.find(level));
    }
    n = parent;
  }
  return true;
}

void RouteTable::match(std::string_view topic, Match& out) const {
  // Levels of the topic, then a walk that follows exact, '+' and '#' edges.
  thread_local std::vector<std::string_view> levels;
  levels.clear();
  for_each_level(topic, [](std::string_view l) { levels.push_back(l); });
  const bool dollar = !topic.empty() && topic[0] == '$';
  auto take = [&out](const Node& n) {
    for (NodeNumber node : n.plain)
      out.plain.push_back(node);
    for (const auto& g : n.groups) {
      GroupMatch m;
      m.key = &g->key;
      m.members.assign(g->members.begin(), g->members.end());
      m.cursor = &g->cursor;
      out.groups.push_back(std::move(m));
    }
  };
  // Iterative walk over (node, level index).
  thread_local std::vector<std::pair<const Node*, size_t>> stack;
  stack.assign(1, {root_.get(), 0});
  while (!stack.empty()) {
    auto [n, i] = stack.back();
    stack.pop_back();
    const bool first = i == 0;
    if (n->hash && !(first && dollar)) take(*n->hash);  // '#' also matches the parent level
    if (i == levels.size()) {
      take(*n);
      continue;
    }
    if (n->plus && !(first && dollar)) stack.emplace_back(n->plus.get(), i + 1);
    auto it = n->children.find(levels[i]);
    if (it != n->children.end()) stack.emplace_back(it->second.get(), i + 1);
  }
  std::sort(out.plain.begin(), out.plain.end());
  out.plain.erase(std::unique(out.plain.begin(), out.plain.end()), out.plain.end());
}

}  // namespace starling::cluster
