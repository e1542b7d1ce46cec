// What the broker sees of the cluster (src/cluster): other Starling nodes reached through
// Kafka. The broker tells it what changes here (subscriptions, client ids taken, publishes)
// and it forwards; what comes from other nodes enters through the front door like any other
// publish, with a ClusterScope. Without [cluster] the broker has no link and pays nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/attachment.h"
#include "broker/external_bridge.h"
#include "broker/message.h"
#include "broker/subscription_tree.h"

namespace starling::broker {

struct PublishOutcome;  // broker.h
class PublishBatch;     // session.h

// One node as this node sees it, for GET /api/v1/cluster.
struct ClusterNodeView {
  std::string id;
  std::string state;  // "up", "down", "left"
  bool self = false;
  int64_t last_seen_ms = -1;  // since its last heartbeat was read (-1: never)
  uint64_t epoch = 0;         // its start (wall clock ms)
  std::string http;
  uint64_t routes = 0;    // filters it has subscribers on
  uint64_t forwards = 0;  // messages this node forwarded to it
};

// A page of one node's routes (filters it has subscribers on), in filter order.
struct RoutePage {
  bool known = false;  // the node is known
  size_t total = 0;
  std::vector<std::string> filters;
};

// What retiring a node did (DELETE /api/v1/cluster/nodes/<id>).
struct RetireOutcome {
  enum class Result { Retired, Unknown, Up, Self } result = Result::Unknown;
  size_t routes = 0;  // of its routes, tombstoned
};

struct ClusterView {
  std::string name;
  std::string node_id;
  bool ready = false;  // read the shared state to its end
  std::string detail;
  int64_t inbox_lag = -1;  // records of this node's inbox not read yet (-1: unknown)
  std::vector<ClusterNodeView> nodes;
};

class ClusterLink {
 public:
  virtual ~ClusterLink() = default;
  // Broker::publish, for a message published on this node (not one from another node), under
  // the subscription tree's read lock once the local matches are known: produces one forward
  // per node with matching routes (store writes join durable; with ack = "kafka" a gate goes
  // into outcome) and the retained record of a retained message. It decides each shared
  // group cluster-wide: the groups it hands to another node are removed from local_groups.
  virtual void forward(const MessagePtr& msg, std::vector<SharedGroup*>& local_groups,
                       Attachment publisher_link, PublishBatch* durable,
                       PublishOutcome& outcome) = 0;
  // A session subscribed to filter / left it (shared filters as "$share/g/f"). wait (may be
  // null): when the other nodes do not know the route yet, a share of *wait (made if null)
  // that settles once every node that is up has read it; the SUBACK waits for it.
  virtual void subscription_added(const std::string& filter,
                                  std::shared_ptr<AckGate>* wait = nullptr) = 0;
  virtual void subscription_removed(const std::string& filter) = 0;
  // A CONNECT, before its session is opened: the client id is claimed cluster-wide. True when
  // the connection must wait (its CONNACK too) until ConnectionControl::cluster_wait_over(link):
  // until the claim is in the cluster's log (so that a later CONNECT elsewhere takes over from
  // this one), or, without clean start, until the client's session has come from the node
  // that held it (or will not).
  virtual bool await_session(const std::string& client_id, bool clean_start, uint32_t expiry,
                             Attachment link) = 0;
  // A client connected here (link: its connection): its client id is claimed cluster-wide,
  // unless await_session claimed it for this connection already.
  virtual void session_opened(const std::string& client_id, bool clean_start, uint32_t expiry,
                              Attachment link) = 0;
  virtual ClusterView view() const = 0;
  virtual RoutePage routes(const std::string& node_id, size_t offset, size_t limit) const = 0;
  // An operator retires a node that is gone for good: its routes and its heartbeat are
  // removed from the cluster's logs (tombstones), so that no node forwards to it any more and
  // it leaves every node's view. Refused for a node that is up and for this node.
  virtual RetireOutcome retire(const std::string& node_id) = 0;
  // Ready once the shared state (nodes, routes, claims, retained) is read to its end.
  virtual BridgeStatus status() const = 0;
  virtual void render_metrics(std::string& out) const = 0;
};

}  // namespace starling::broker
