// One Starling node of a cluster whose backbone is Kafka (docs/cluster.md). Nodes never talk
// to each other: each writes and reads a few topics under starling.<name>.:
//   nodes      (key node id)           heartbeats: who is up, since when, their HTTP address
//   routes     (key "node filter")     which node has subscribers on which filter
//   sessions   (key client id)         claims: the last node a client connected to owns it
//   retained   (key topic)             retained messages, in one order for every node
//   inbox.<id> (key publisher)         messages forwarded to node <id>
// A publish here is routed locally as always and forwarded once per node with matching routes
// (never per subscriber) through the Kafka producer's durable outbox. The other nodes' state is
// read by one thread (LogReader, log_reader.cc) that also consumes this node's inbox.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "cluster/route_table.h"
#include "cluster/wire/records.h"
#include "config/config.h"
#include "core/reader_lock.h"
#include "kafka/producer.h"

namespace starling::cluster {

class LogReader;

// The Kafka topic names of a cluster.
struct Topics {
  explicit Topics(const std::string& cluster_name);
  std::string nodes, routes, sessions, retained;
  std::string inbox(std::string_view node) const { return prefix + "inbox." + std::string(node); }
  std::string prefix;  // "starling.<name>."
};

// The Kafka settings of a cluster node's producer: records as large as the largest MQTT packet
// a client may send (max_packet_size and room for the record's own fields) unless the user set
// message.max.bytes. librdkafka refuses larger records itself (1,000,000 bytes by default).
config::KafkaSettings kafka_settings_for_cluster(const config::Config& config);
// The largest record the cluster writes: the topic limit (max.message.bytes) it asks for.
uint64_t cluster_record_limit(const config::Config& config);

class Cluster final : public broker::ClusterLink {
 public:
  Cluster(const config::Config& config, broker::Broker& broker);
  ~Cluster() override;
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // After the store is restored and the Kafka producer started: creates the topics when
  // missing, writes this node's routes and heartbeat, and starts reading the shared state and
  // the inbox. Throws std::runtime_error when the reader cannot be set up.
  void start(kafka::Producer& producer, const std::string& bootstrap);
  // Stops reading the inbox (what was routed is committed); the node is still a member.
  void stop_reading();
  // Says goodbye (a last heartbeat marked leaving), before the producer is flushed.
  void leave();

  // broker::ClusterLink
  void forward(const broker::MessagePtr& msg, std::vector<broker::SharedGroup*>& local_groups,
               broker::Attachment publisher_link, broker::PublishBatch* durable,
               broker::PublishOutcome& outcome) override;
  void subscription_added(const std::string& filter,
                          std::shared_ptr<broker::AckGate>* wait = nullptr) override;
  void subscription_removed(const std::string& filter) override;
  bool await_session(const std::string& client_id, bool clean_start, uint32_t expiry,
                     broker::Attachment link) override;
  void session_opened(const std::string& client_id, bool clean_start, uint32_t expiry,
                      broker::Attachment link) override;
  broker::ClusterView view() const override;
  broker::RoutePage routes(const std::string& node_id, size_t offset, size_t limit) const override;
  broker::RetireOutcome retire(const std::string& node_id) override;
  broker::BridgeStatus status() const override;
  void render_metrics(std::string& out) const override;

  // --- What the log reader found (its thread) ------------------------------------------
  void on_heartbeat(const std::string& node, std::string_view value);
  // A node's heartbeat was removed (it was retired): it leaves the view.
  void on_heartbeat_removed(const std::string& node);
  // Returns true for a route of another node (the reader then says how far it has read).
  // partition, offset: where the record is in the routes log.
  bool on_route(std::string_view key, std::string_view value, bool tombstone, int32_t partition,
                int64_t offset);
  // live: read as it happened (not while catching up with the log at start).
  void on_claim(const std::string& client_id, std::string_view value, bool live);
  // A session (or word that there is none) from the node that held it: adopted, and a
  // CONNECT waiting for it goes on. store_batch: the inbox's batch (null without a store).
  void on_handover(std::string_view value, store::Batch* store_batch);
  // CONNECTs that waited too long for their session go on without it (a fresh session); route
  // barriers whose nodes went down (or never answered) are released.
  void expire_waits();
  // SUBACKs whose routes every node that is up has read go out.
  void check_barriers();
  // Returns true for a record of another node (the reader then says how far it has read).
  bool on_retained(std::string_view topic, std::string_view value);
  // A forward read from the inbox (before it is routed here) or a message published here: a
  // session that moved away from this node a moment ago gets it passed on to its new node when
  // it matches the session's subscriptions and that node does not get it anyway (record.also).
  // durable: the batch of the inbox or of the publish.
  void relay(const MessageRecord& record, broker::PublishBatch* durable);
  // The shared state has been read to the end once: stale routes of an earlier run go.
  void on_caught_up();

  const std::string& node_id() const { return node_id_; }
  const Topics& topics() const { return topics_; }
  uint64_t epoch() const { return epoch_; }
  broker::Broker& broker() { return broker_; }
  uint32_t heartbeat_ms() const { return settings_.heartbeat_ms; }
  // Sends a heartbeat now (the reader's thread calls it every heartbeat_ms).
  void heartbeat(bool leaving = false);

 private:
  struct NodeState {
    std::string id;
    std::string inbox;  // its inbox topic
    uint64_t epoch = 0;
    std::string http;
    bool leaving = false;
    bool retired = false;       // its heartbeat was removed: not shown (until it comes back)
    int64_t last_seen_ms = -1;  // steady clock ms of its last heartbeat read
    std::set<std::string, std::less<>> filters;  // its routes, for the HTTP view
    std::map<int32_t, int64_t> routes_read;      // how far it has read the routes log
    std::map<int32_t, int64_t> retained_read;    // and the retained log
    std::atomic<uint64_t> forwards{0};
  };
  // A number for a node id (state_lock_ held for writing).
  NodeNumber number_of(const std::string& id);
  // Writes this node's route for filter: present with members, or a tombstone at 0.
  struct RouteBarrier;
  // barrier: told where the record landed (a new route that SUBACKs wait for).
  void write_route(const std::string& filter, uint32_t members,
                   std::shared_ptr<RouteBarrier> barrier = nullptr);
  kafka::Producer::Delivery delivery_for(const broker::Message& msg) const;
  // delivered: called once Kafka has the claim (on the producer's thread).
  void write_claim(const std::string& client_id, bool clean_start, uint32_t expiry,
                   std::function<void()> delivered);
  // Sends a session (or that there is none) to the node that claimed its client id.
  void send_handover(const std::string& to_node, const std::string& client_id,
                     broker::Broker::Departure&& departure, broker::PublishBatch* durable);
  // Is another node up by its heartbeats?
  bool others_up() const;
  // Is the node up by its heartbeats (state_lock_ held)?
  bool up_locked(const NodeState& n) const;

  const config::ClusterSettings settings_;
  const std::string node_id_;
  const Topics topics_;
  const uint64_t epoch_;  // this run's start, wall clock ms
  std::string http_address_;
  broker::Broker& broker_;
  kafka::Producer* producer_ = nullptr;  // set by start()
  std::unique_ptr<LogReader> reader_;

  // The other nodes and their routes; read on every publish.
  mutable core::ReaderLock state_lock_;
  RouteTable routes_;
  std::deque<NodeState> nodes_;  // by NodeNumber; never shrinks
  std::unordered_map<std::string, NodeNumber> numbers_;
  NodeNumber self_ = 0;

  // This node's subscriptions per filter, and its claims not yet read back from the log.
  mutable std::mutex local_mutex_;
  std::unordered_map<std::string, uint32_t> local_counts_;
  std::unordered_map<std::string, uint32_t> pending_claims_;
  // The owner of each client id by the last claim read, and whether it kept the session.
  struct Owner {
    std::string node;
    bool persistent = false;
  };
  std::unordered_map<std::string, Owner> owners_;
  // CONNECTs waiting until their claim is read back from the log (every earlier claim of the
  // client id has been read then), and then for their session from the node that held it.
  struct Waiting {
    broker::Attachment link;
    int64_t deadline_ms = 0;  // steady clock
    bool clean_start = false;
    bool claim_read = false;  // now waiting for the session
  };
  std::unordered_map<std::string, Waiting> waiting_;
  // Client ids claimed by await_session, with the connection that did: its session_opened
  // writes no second claim (another connection's does, also when this one died waiting).
  std::unordered_map<std::string, broker::Attachment> claimed_;
  // New routes not yet known to every node that is up, by filter, with the SUBACKs that wait;
  // and retained records not yet read by every node that is up, with the acknowledgements of
  // their publishes.
  struct RouteBarrier {
    bool retained = false;   // a record of the retained log (not the routes log)
    int32_t partition = -1;  // where the route record landed (-1: not acknowledged yet)
    int64_t offset = -1;
    int64_t deadline_ms = 0;  // steady clock: released then whatever the nodes said
    std::vector<std::shared_ptr<broker::AckGate>> gates;
  };
  std::unordered_map<std::string, std::shared_ptr<RouteBarrier>> barriers_;
  // Barriers on records of other nodes' logs: retained records, and the new node's routes of
  // a departed session (its ghost routes here go when every node knows them).
  std::vector<std::shared_ptr<RouteBarrier>> log_barriers_;
  // Sessions that moved from here to another node lately: messages still on their way here
  // that match their subscriptions are passed on (relay()).
  // Its routes here stay (ghosts) until every node that is up knows the new node's route for
  // the filter, so that no publish in between finds no route at all.
  struct Departed {
    std::string to_node;
    std::vector<std::string> filters;  // plain (not shared) ones
    std::vector<std::string> ghosts;   // of those, the ones whose route here is kept
    int64_t until_ms = 0;              // steady clock
    // A message passed on: what goes to the new node's inbox.
    struct Held {
      std::string node, client, value;
      kafka::Producer::Delivery delivery;
    };
    bool handed = false;     // the handover is in the outbox: messages passed on go at once
    std::vector<Held> held;  // until then, passed on after it
  };
  std::unordered_map<std::string, Departed> departed_;  // by local_mutex_
  std::atomic<bool> any_departed_{false};
  void send_relayed(std::vector<Departed::Held>& records, broker::PublishBatch* durable);
  // The client's departed session is forgotten: nothing more is passed on, its ghost routes go.
  void forget_departed(const std::string& client_id);
  // The route of filter kept for the client's departed session goes (if still kept).
  void end_ghost(const std::string& client_id, const std::string& filter);
  // Departed sessions past their window: forgotten, their ghost routes gone.
  void expire_departed();
  // A CONNECT whose session arrived waits (link) until the other nodes know its routes.
  void when_routes_known(const std::vector<std::string>& filters, broker::Attachment link);
  // The CONNECT waiting for client_id goes on (if it still waits with link).
  void release_wait(const std::string& client_id);
  // Sessions arriving in several handover records: their filters so far (reader thread only).
  std::unordered_map<std::string, std::vector<std::string>> arriving_filters_;
  size_t handover_budget_ = 0;  // bytes of messages per handover record
  // Routes of this node found in the log at start; those no longer true are removed.
  std::vector<std::string> logged_own_routes_;
  bool routes_written_ = false;  // by local_mutex_: start() wrote the routes
  std::atomic<bool> caught_up_{false};
};

}  // namespace starling::cluster
