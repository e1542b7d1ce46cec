// The broker's shared state and the publish path: session registry, subscription tree,
// retained store, delayed wills, $SYS. Any worker thread calls into it; it never touches
// sockets (see ConnectionControl for the few things it asks of connections).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/access_control.h"
#include "broker/cluster_link.h"
#include "broker/connection_control.h"
#include "broker/external_bridge.h"
#include "broker/ingress.h"
#include "broker/message.h"
#include "broker/mqtt_bridges.h"
#include "broker/retained_store.h"
#include "broker/session.h"
#include "broker/session_registry.h"
#include "broker/subscription_tree.h"
#include "config/config.h"
#include "core/reader_lock.h"
#include "store/store.h"

namespace starling::broker {

struct PublishOutcome {
  size_t receivers = 0;    // sessions the message was sent or queued to
  size_t dropped = 0;      // matching sessions that could not take it (queue full)
  bool congested = false;  // a receiver's queue is filling: the publisher should pause
  // Set by the bridge: the acknowledgement waits for it (Kafka sync mode).
  std::shared_ptr<AckGate> gate;
  // The bridge could not take the message (its buffer is full): the publisher is told
  // (PUBACK 0x97 on 5.0, HTTP 503; a 3.1.1 QoS 1/2 publisher is disconnected unacknowledged).
  bool refused = false;
};

// Read-only copies of broker state for the HTTP API (see broker_views.cc).
struct ClientPage {
  size_t total = 0;  // sessions matching the prefix
  std::vector<SessionInfo> clients;
};
struct SubscriptionInfo {
  std::string client_id;
  std::string filter;
  SubscriptionOptions options;
};
struct SubscriptionPage {
  size_t total = 0;
  std::vector<SubscriptionInfo> subscriptions;
};
struct RetainedPage {
  size_t total = 0;
  std::vector<MessagePtr> messages;
};
struct QueueTotals {
  uint64_t queued = 0;
  uint64_t inflight = 0;
  uint64_t max_depth = 0;  // the longest session queue
};

class Broker {
 public:
  // store is null under durability "none": everything lives in memory only.
  Broker(const config::Config& config, store::Store* store);
  ~Broker();

  // The settings in force; replaced whole on reload.
  std::shared_ptr<const config::Config> settings() const;
  void reload(const config::Config& fresh);

  store::Store* store() const { return store_; }
  // The password and ACL files in force.
  AccessControl& access() { return access_; }
  // The Kafka bridge, offered every routed message; set before the listeners open.
  void set_bridge(ExternalBridge* bridge) { bridge_ = bridge; }
  ExternalBridge* bridge() const { return bridge_; }
  // The other nodes of the cluster ([cluster]); set before the store is restored (restored
  // subscriptions become routes) and taken back (null) before the cluster goes.
  void set_cluster(ClusterLink* cluster) { cluster_ = cluster; }
  ClusterLink* cluster() const { return cluster_; }
  // The bridges to other MQTT brokers ([[bridges]]), for the HTTP API; null without any.
  void set_mqtt_bridges(MqttBridges* bridges) { mqtt_bridges_.store(bridges); }
  MqttBridges* mqtt_bridges() const { return mqtt_bridges_.load(); }
  // The net layer's control over connections (kick, resume reading), handed over once the
  // server exists and taken back (null) before it goes.
  void set_connection_control(ConnectionControl* control) { connections_.attach(control); }
  // Always usable: before a server is attached, requests go nowhere.
  ConnectionControlRelay& connections() { return connections_; }
  // The front door every transport publishes through (validation, routing, durability).
  Ingress& ingress() { return ingress_; }
  // The queue and window limits of the settings in force.
  DeliveryLimits delivery_limits() const;
  // Loads sessions, subscriptions, queues, retained messages and delayed wills from the store
  // (before the listeners open). Expired sessions and messages are dropped on the way.
  void restore(Clock::time_point now);

  // --- Sessions ---------------------------------------------------------------------------
  struct OpenResult {
    SessionPtr session;
    bool present = false;   // an existing session was resumed
    Attachment taken_over;  // a connection that held the session (kick it with 0x8E)
  };
  OpenResult open_session(const std::string& client_id, bool clean_start, uint32_t expiry,
                          Attachment link, const ClientCapabilities& caps,
                          const DeliveryLimits& limits);
  // The connection went away. Ends the session when it does not outlive it.
  void close_session(const SessionPtr& session, Attachment link, Clock::time_point now);
  // Removes the session, its subscriptions, and hands shared-subscription messages it had not
  // completed to other members of their groups.
  // why: for the session.terminated event ("closed", "expired", "discarded", "moved").
  void end_session(const SessionPtr& session, Clock::time_point now, const char* why);

  // --- Publish ----------------------------------------------------------------------------
  // Routes msg to every matching subscription (and stores it when retained): the router behind
  // the front door (ingress()), which transports publish through; called directly only for the
  // broker's own messages (wills, $SYS), which need no checks. publisher may be null.
  // publisher_link is where to resume reading after congestion. durable collects the store writes
  // of a publish whose acknowledgement waits for them.
  PublishOutcome publish(const MessagePtr& msg, const Session* publisher, Attachment publisher_link,
                         Clock::time_point now, PublishBatch* durable = nullptr);

  // --- The cluster (called by src/cluster) -------------------------------------------------
  // Another node took client_id (a CONNECT there, later in the cluster's log than any here): a
  // connection here gets DISCONNECT 0x8E and a delayed will of the client is cancelled. With
  // clean start there (or no expiry here) the session ends; else it moves (hand_over_session).
  void client_taken_elsewhere(const std::string& client_id, bool ends, Clock::time_point now);
  bool has_session(const std::string& client_id) const;
  // A session leaving for another node: taken out of the registry and the subscription tree
  // (its connection, if any, kicked with 0x8E), its state exported and its store records
  // erased into `erase` (written with the handover record, so that it is in one place or the
  // other). found is false when there is no such session.
  struct Departure {
    bool found = false;
    uint32_t expiry = 0;
    std::map<std::string, SubscriptionOptions> subscriptions;
    Session::Exported state;
  };
  Departure hand_over_session(const std::string& client_id, Clock::time_point now,
                              store::Batch* erase);
  // A session arriving from another node, before its client's CONNACK: made here with its
  // subscriptions, or (the client connected afresh meanwhile) its messages merged into the
  // session here. Store writes go into batch (with the inbox offset of the record).
  void adopt_session(const std::string& client_id, uint32_t expiry,
                     std::vector<std::pair<std::string, SubscriptionOptions>>&& subscriptions,
                     Session::Exported&& state, Clock::time_point now, store::Batch* batch);
  // The retained message of a topic as the cluster's log orders it (an empty payload clears
  // it): stored, not routed (its forwards carry it to subscribers).
  void apply_retained(const MessagePtr& msg, Clock::time_point now);

  // --- Subscriptions ----------------------------------------------------------------------
  // Adds or replaces; returns true when the subscription already existed. ticket is the
  // store write a SUBACK must wait for (0: none).
  // route_wait: in a cluster, the other nodes' knowledge of the route to wait for (see
  // ClusterLink::subscription_added).
  bool subscribe(const SessionPtr& session, const std::string& filter,
                 const SubscriptionOptions& options, uint64_t& ticket,
                 std::shared_ptr<AckGate>* route_wait = nullptr);
  bool unsubscribe(const SessionPtr& session, const std::string& filter, uint64_t& ticket);
  // Sends the retained messages matching filter to session (after its SUBACK).
  void deliver_retained(const SessionPtr& session, const std::string& filter,
                        const SubscriptionOptions& options, Clock::time_point now);

  // --- Wills ------------------------------------------------------------------------------
  void publish_will(const mqtt::Will& will, const std::string& client_id, Clock::time_point now);
  void schedule_will(const mqtt::Will& will, const std::string& client_id, Clock::time_point due);
  void cancel_will(const std::string& client_id);

  // --- Housekeeping: called every second from one thread ----------------------------------
  void tick(Clock::time_point now);

  // --- Figures ------------------------------------------------------------------------------
  void client_connected() { connected_clients_.fetch_add(1, std::memory_order_relaxed); }
  void client_disconnected() { connected_clients_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t connected_clients() const { return connected_clients_.load(std::memory_order_relaxed); }
  size_t session_count() const;
  size_t subscription_count() const;
  size_t retained_count() const;
  Clock::time_point started_at() const { return started_at_; }

  // --- Views (HTTP API; broker_views.cc) ---------------------------------------------------
  // Copies taken under the locks, in client id (topic) order, one page at a time. Sessions
  // are listed outside sessions_mutex_ (copied pointers, then each session's own lock).
  ClientPage clients(std::string_view id_prefix, size_t offset, size_t limit) const;
  std::optional<SessionInfo> client(const std::string& client_id) const;
  // A client's subscriptions, or every session's (empty client_id).
  SubscriptionPage subscriptions(const std::string& client_id, size_t offset, size_t limit) const;
  // Retained messages matching filter (every one when empty), not expired.
  RetainedPage retained(const std::string& filter, size_t offset, size_t limit,
                        Clock::time_point now) const;
  QueueTotals queue_totals() const;
  // The connection of an online session; empty when offline or unknown. found tells which.
  Attachment connection_of(const std::string& client_id, bool& found) const;

 private:
  void publish_sys(Clock::time_point now);
  // Each delivery to another member of its group (online first); counted as dropped
  // (no_shared_member) when its group has no other member.
  void redeliver_shared(std::vector<Delivery>&& deliveries, const Session* leaving,
                        Clock::time_point now);
  // A persistent member went offline: what it has not received of groups with another member
  // online goes to them (MQTT 5.0 4.8.2 allows it "as soon as it loses its connection",
  // [MQTT-4.8.2-6]); the rest waits for it.
  void hand_over_shared(const SessionPtr& session, Clock::time_point now);
  Session* pick_shared_member(SharedGroup& group, const Session* exclude);
  SessionPtr make_session(const std::string& client_id);
  // Adds deleting every record of a client to batch.
  static void erase_client_records(store::Batch& batch, std::string_view client_id);
  void write_session_record(const Session& session, uint32_t expiry, uint64_t disconnected_ms);
  std::vector<SessionPtr> all_sessions() const;  // a copy of the registry's pointers

  store::Store* const store_;
  ExternalBridge* bridge_ = nullptr;
  ClusterLink* cluster_ = nullptr;
  std::atomic<MqttBridges*> mqtt_bridges_{nullptr};
  ConnectionControlRelay connections_;
  Ingress ingress_{*this};
  AccessControl access_;
  mutable std::mutex settings_mutex_;
  std::shared_ptr<const config::Config> settings_;

  mutable std::mutex sessions_mutex_;
  SessionRegistry sessions_;
  std::multimap<Clock::time_point, std::weak_ptr<Session>> expiry_queue_;  // by sessions_mutex_

  mutable core::ReaderLock tree_mutex_;
  SubscriptionTree tree_;

  mutable std::shared_mutex retained_mutex_;
  RetainedStore retained_;

  std::mutex wills_mutex_;
  std::unordered_map<std::string, PendingWill> pending_wills_;

  std::atomic<int64_t> connected_clients_{0};
  Clock::time_point started_at_;
  Clock::time_point next_sys_{};
};

// Builds a message from a will (for publish_will and tests).
MessagePtr make_will_message(const mqtt::Will& will, const std::string& client_id,
                             Clock::time_point now);

}  // namespace starling::broker
