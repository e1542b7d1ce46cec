// The other nodes' subscriptions, as read from the cluster's routes log: which nodes have
// subscribers on which filters, and how many members each has in a shared group. A publish
// looks its topic up here to know where to forward it. A trie keyed by topic level, like the
// broker's subscription tree, but its leaves hold node numbers instead of sessions.
//
// Not thread-safe by itself: the cluster guards it with a reader/writer lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace starling::cluster {

using NodeNumber = uint32_t;  // the cluster's own numbering of node ids (see Cluster)

class RouteTable {
 public:
  RouteTable();
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // A node has subscribers on filter ("$share/g/f" for a shared group, with its member count
  // there). Adding again updates the member count. Returns false for a malformed filter.
  bool add(NodeNumber node, std::string_view filter, uint32_t members);
  // Removes a node's route; false when it had none.
  bool remove(NodeNumber node, std::string_view filter);

  // A shared group that matched, with the nodes that have members in it.
  struct GroupMatch {
    const std::string* key = nullptr;                      // "$share/g/filter"
    std::vector<std::pair<NodeNumber, uint32_t>> members;  // node, member count
    std::atomic<uint32_t>* cursor = nullptr;               // weighted round robin over the members
  };
  struct Match {
    std::vector<NodeNumber> plain;  // nodes with a plain subscription matching (sorted, unique)
    std::vector<GroupMatch> groups;
    void clear() {
      plain.clear();
      groups.clear();
    }
  };
  // Appends what matches topic. '$'-topics are not matched by filters starting with '+' or '#'.
  void match(std::string_view topic, Match& out) const;

  size_t routes() const { return routes_; }

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t routes_ = 0;
};

}  // namespace starling::cluster
