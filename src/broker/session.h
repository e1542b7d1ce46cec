// A session: what the broker keeps for one client id, connected or not. It is also the
// delivery target of the fan-out: any worker thread may call deliver(); the session's own mutex
// guards its queues and the bytes waiting for its connection, and critical sections are a copy
// and a patch, never I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/acl.h"
#include "broker/attachment.h"
#include "broker/connection_control.h"
#include "broker/message.h"
#include "broker/subscription_tree.h"
#include "core/compact_mutex.h"
#include "core/inline_string.h"
#include "core/peer_address.h"
#include "core/ring_queue.h"
#include "mqtt/packet.h"
#include "store/records.h"
#include "store/store.h"

namespace starling::broker {

// Per-connection limits copied into the session when a connection attaches.
struct DeliveryLimits {
  uint32_t max_queued_messages = 10000;
  uint64_t max_queued_bytes = 64ull << 20;
  uint64_t max_out_buffer_bytes = 8ull << 20;
  uint16_t max_inflight = 256;
  uint32_t resident_messages = 1000;  // queued in memory; the rest wait in the store

  bool operator==(const DeliveryLimits&) const = default;
  // One shared copy of these values, kept for the life of the process: sessions point at it
  // instead of holding 32 bytes each (a process sees a handful of distinct limits, one per
  // configuration it loaded).
  static const DeliveryLimits* shared(const DeliveryLimits& limits);
};

// What the attached client told us in CONNECT about what it can take.
struct ClientCapabilities {
  mqtt::Version version = mqtt::Version::V311;
  uint16_t receive_maximum = 65535;
  uint32_t maximum_packet_size = 0;  // 0: no limit
  uint16_t topic_alias_maximum = 0;
  // And what it may read ([auth] acl_file); null: everything. Set with the connection so that
  // no delivery slips in between under no rules.
  std::shared_ptr<const auth::ClientAcl> read_acl;

  bool may_read(std::string_view topic) const { return !read_acl || read_acl->can_read(topic); }
};

using ShareKey = std::shared_ptr<const std::string>;  // "$share/group/filter"

// One delivery of a message to this session: effective QoS, retain flag and the subscription
// identifiers of every subscription that matched.
struct Delivery {
  MessagePtr message;
  uint8_t qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  ShareKey share;          // set when it came through a shared subscription
  uint64_t store_seq = 0;  // its record in the store (persistent sessions), 0 if none
};

// The store writes of one publish: every persistent receiver adds its queue record to the
// batch, and the acknowledgements that depend on them wait for its ticket. The ticket is
// reserved at the first write, so a publish that changes nothing durable (no persistent
// receiver, not retained) is acknowledged without waiting for the store.
class PublishBatch {
 public:
  explicit PublishBatch(store::Store* store) : store_(store) {}
  ~PublishBatch() { commit(); }
  PublishBatch(const PublishBatch&) = delete;
  PublishBatch& operator=(const PublishBatch&) = delete;

  // The batch to add to; reserves the ticket on first use.
  store::Batch& batch() {
    if (ticket_ == 0) ticket_ = store_->reserve();
    return batch_;
  }
  uint64_t ticket() const { return ticket_; }  // 0 while nothing was written
  // Hands the batch to the store (once); returns the ticket to wait for, 0 if none.
  uint64_t commit() {
    if (ticket_ != 0 && !committed_) {
      committed_ = true;
      store_->commit(ticket_, std::move(batch_));
    }
    return ticket_;
  }

 private:
  store::Store* store_;
  store::Batch batch_;
  uint64_t ticket_ = 0;
  bool committed_ = false;
};

// Denied: the receiver's ACL does not let it read the topic (counted, not a drop).
enum class DeliverResult : uint8_t { Sent, Queued, Dropped, Denied };

// A copy of what the HTTP API shows of a session, taken under its lock.
struct SessionInfo {
  std::string client_id;
  bool connected = false;
  mqtt::Version version = mqtt::Version::V311;
  std::string peer;  // address of the last connection, "" if never connected since start
  size_t subscriptions = 0;
  size_t queued = 0;  // resident and in the store
  size_t inflight = 0;
  uint32_t expiry_interval = 0;
};

struct PendingWill {
  mqtt::Will will;
  Clock::time_point due;
  std::string client_id;
};

class Session {
 public:
  // connections: how to resume a publisher that waited for this session's queue.
  Session(std::string client_id, ConnectionControl& connections);

  std::string_view client_id() const { return client_id_.view(); }

  // --- Fan-out (any thread) -------------------------------------------------------------
  // congested is set when the session's queue is filling and the publisher should slow down.
  DeliverResult deliver(Delivery&& d, Clock::time_point now, bool& congested,
                        PublishBatch* durable = nullptr);

  // --- Connection lifecycle (owner thread) ----------------------------------------------
  // Attaches a connection. Returns the previous attachment (a connection to take over).
  Attachment attach(Attachment link, const ClientCapabilities& caps, const DeliveryLimits& limits);
  // Resends unacknowledged messages (DUP) and PUBRELs, then what waited in the queue.
  void resume_delivery(Clock::time_point now);
  // Detaches if link is still the attached one. Returns false when another connection took
  // the session over meanwhile.
  bool detach(Attachment link);
  bool online() const;
  bool attached_to(Attachment link) const;
  // The attached client's version, read without the lock to pick encodings before fan-out.
  mqtt::Version version_hint() const { return version_hint_.load(std::memory_order_relaxed); }

  // Bytes for the attached connection, sent once store ticket is durable (0: at once).
  // Dropped when link is no longer the attached connection (it was taken over).
  void append_output(std::string_view bytes, Attachment link, uint64_t ticket = 0);
  // Swaps the waiting bytes into out (appends if out is not empty) and clears the wake flag.
  // Takes nothing while the bytes wait for a store write (the store wakes the owner after).
  // Returns true when queued messages wait in the store to be read back (call refill()).
  bool take_output(std::string& out);
  // Gives back the capacity of the output buffer while nothing waits in it (idle connections).
  void release_idle_output();
  // Reads the next page of queued messages that live only in the store (owner thread; the
  // read happens outside the session lock).
  void refill(Clock::time_point now);

  // --- Durability -------------------------------------------------------------------------
  void set_store(store::Store* store);
  bool persistent();   // has a store and an expiry interval: its state is written
  bool has_records();  // was persistent at some time: the store may hold records of it
  // Restores a queued or in-flight message at load time.
  void restore_queued(uint64_t seq, Delivery&& d, store::QueueState state, uint16_t packet_id);
  // At load time: a queued message left in the store (beyond the resident limit).
  void restore_spilled(uint64_t seq, size_t bytes);
  size_t resident_queued();
  void set_limits(const DeliveryLimits& limits);

  // --- Acks from the client (owner thread) ----------------------------------------------
  // Unknown: no message in flight has the packet id (the caller answers per spec). WrongType:
  // one has, in a state this ack does not belong to (PUBREC or PUBCOMP for QoS 1, PUBACK for
  // QoS 2, PUBCOMP before PUBREC): a protocol error; nothing changed.
  enum class AckResult : uint8_t { Done, Unknown, WrongType };
  AckResult on_puback(uint16_t packet_id, Clock::time_point now);
  AckResult on_pubrec(uint16_t packet_id, Clock::time_point now, bool failed);
  AckResult on_pubcomp(uint16_t packet_id, Clock::time_point now);

  // Inbound QoS 2 (exactly once): packet ids received and not yet released.
  // Returns false when the id was already there (a DUP retransmission: do not route again).
  bool begin_inbound_qos2(uint16_t packet_id);
  bool release_inbound_qos2(uint16_t packet_id);
  bool has_inbound_qos2(uint16_t packet_id);
  size_t inbound_qos2_count();

  // Subscriptions of this session (filter -> options), for cleanup and resubscribe checks.
  // Returns true when the filter was new.
  bool remember_subscription(const std::string& filter, const SubscriptionOptions& options);
  bool forget_subscription(const std::string& filter);
  std::map<std::string, SubscriptionOptions> subscriptions();

  // Messages that came through a shared subscription and were not completed, for another
  // member of their group (when this session ends, or goes offline and another member is
  // online): every queued one, never sent, and in-flight QoS 1 ones (at least once allows the
  // second copy). In-flight QoS 2 messages stay: they must be completed with this client and
  // never go to another one ([MQTT-4.8.2-4], [MQTT-4.8.2-5]). Only those of the groups in
  // `groups` ("$share/group/filter"); all groups when it is null.
  std::vector<Delivery> take_shared_undelivered(const std::set<std::string>* groups = nullptr);
  // The groups take_shared_undelivered would take messages of, each with the topic of one of
  // them (to find the group in the subscription tree).
  std::map<std::string, std::string> shared_undelivered_groups();
  // --- Moving to another node of the cluster -------------------------------------------
  // What the session still has to deliver, as store records: in flight first (their packet
  // ids and states), then queued (those only in the store read back from it), and the inbound
  // QoS 2 packet ids. The session is ended: it keeps nothing, and nothing counts as dropped.
  struct Exported {
    std::vector<store::QueuedRecord> messages;
    std::vector<uint16_t> inbound_qos2;
  };
  Exported export_and_end(Clock::time_point now);
  // Takes in what another node exported, before a connection attaches. fresh: this session
  // was made for it (in-flight messages keep their packet ids); otherwise a client already
  // connected afresh here, and the old node's messages are queued as new ones (those the
  // client had acknowledged with PUBREC are not sent again). Persistent sessions add their
  // records to batch. Returns how many expired on the way (dropped).
  size_t adopt(std::vector<store::QueuedRecord>&& messages, const std::vector<uint16_t>& inbound,
               bool fresh, Clock::time_point now, store::Batch* batch);

  // The session ends: how many messages it still had queued or in flight (not completed by the
  // client), counted once however often it is called.
  size_t end_and_count_undelivered();

  // Persistence and expiry (guarded by the mutex; set by the owner on connect/disconnect).
  void set_expiry_interval(uint32_t seconds);
  uint32_t expiry_interval();
  void mark_disconnected(Clock::time_point now);
  bool expired(Clock::time_point now);

  // Publishers paused because this session's queue was full; resumed when it drains.
  void add_waiter(Attachment publisher);

  size_t queued_count();
  size_t inflight_count();

  // --- Views (HTTP API) -------------------------------------------------------------------
  void set_peer(core::PeerAddress peer);
  // New read rules for the attached client (re-authentication); null: everything. Queued
  // messages it may no longer read are dropped.
  void set_read_acl(std::shared_ptr<const auth::ClientAcl> acl);
  SessionInfo info();
  Attachment link() const;

 private:
  ConnectionControl& connections_;
  uint16_t next_packet_id_locked();
  void pump_locked(Clock::time_point now);
  bool write_publish_locked(const Delivery& d, uint16_t packet_id, bool dup, Clock::time_point now);
  void write_pubrel_locked(uint16_t packet_id);
  void release_waiters_locked();
  void drop_unreadable_locked();
  // A queued message the client may not read: counted, its record erased; true if dropped.
  bool drop_if_unreadable_locked(const Delivery& d);
  bool persistent_locked() const { return store_ && expiry_interval_ > 0; }
  bool may_read_locked(std::string_view topic) const {
    return !read_acl_ || read_acl_->can_read(topic);
  }
  // The attached client's version (set with the connection, under the lock).
  mqtt::Version version_locked() const { return version_hint_.load(std::memory_order_relaxed); }
  // The bytes waiting for the connection, made when there are any (release_idle_output gives
  // them back).
  std::string& output_locked() {
    if (!out_) out_ = std::make_unique<std::string>();
    return *out_;
  }
  store::QueuedRecord record_locked(const Delivery& d, store::QueueState state, uint16_t packet_id,
                                    Clock::time_point now) const;
  // Writes the record of d now (outside a publish batch); returns the ticket.
  uint64_t write_record_locked(const Delivery& d, store::QueueState state, uint16_t packet_id,
                               Clock::time_point now);
  void erase_record_locked(const Delivery& d);
  // Adds a received QoS 2 packet id; false if it was there.
  bool insert_inbound_qos2_locked(uint16_t packet_id);
  size_t send_quota_locked() const;

  struct Inflight {
    Delivery delivery;
    uint16_t packet_id = 0;
    bool released = false;  // QoS 2: PUBREC received, PUBREL sent
  };

  const core::InlineString client_id_;
  Attachment link_;
  std::unique_ptr<std::string> out_;  // output_locked()
  // What the attached client may read (ClientCapabilities::read_acl); null: everything.
  std::shared_ptr<const auth::ClientAcl> read_acl_;
  const DeliveryLimits* limits_;  // DeliveryLimits::shared
  // core::RingQueue: 8 bytes and nothing allocated while empty (most sessions, most of the time).
  core::RingQueue<Inflight> inflight_;
  core::RingQueue<Delivery> queue_;
  uint64_t queue_bytes_ = 0;
  core::RingQueue<uint16_t> inbound_qos2_;  // sorted; a std::set would cost 48 bytes more
  // Made at the first subscription: a session without any (most devices) pays 8 bytes.
  std::unique_ptr<std::map<std::string, SubscriptionOptions>> subscriptions_;
  // topic -> alias, per connection; made at the first alias (most clients use none).
  std::unique_ptr<std::unordered_map<std::string, uint16_t>> out_aliases_;
  core::RingQueue<Attachment> waiters_;
  // The small fields together (no padding between them: every client has a session).
  mutable core::CompactMutex mutex_;  // 4 bytes where std::mutex takes 40
  // inbound_qos2_'s size, readable without the lock: the Receive Maximum check on every QoS 1
  // PUBLISH (at most 65535 ids).
  std::atomic<uint32_t> inbound_qos2_size_{0};
  uint32_t expiry_interval_ = 0;
  // Queued messages that live only in the store, newer than everything in queue_: the
  // first of them has record number spill_from_seq_ or more.
  uint32_t spilled_ = 0;
  // The attached client's limits from its CONNECT (ClientCapabilities).
  uint32_t maximum_packet_size_ = 0;  // 0: no limit
  uint16_t receive_maximum_ = 65535;
  uint16_t topic_alias_maximum_ = 0;
  uint16_t last_packet_id_ = 0;
  std::atomic<mqtt::Version> version_hint_{mqtt::Version::V311};
  bool wake_pending_ = false;
  bool ever_persistent_ = false;  // records may exist even after expiry went to 0
  bool ended_ = false;            // end_and_count_undelivered ran
  bool refilling_ = false;
  Clock::time_point disconnected_at_{};
  store::Store* store_ = nullptr;
  uint64_t fence_ = 0;              // out_ waits until this store ticket is durable
  uint64_t fence_waiting_for_ = 0;  // the ticket a store wake-up is registered for
  uint64_t next_seq_ = 1;           // queue record numbers
  uint64_t spill_from_seq_ = 0;     // see spilled_
  // The store ticket of the newest spilled record: until the store has written it, a refill
  // that finds fewer records than spilled_ says must not take the count for stale.
  uint64_t spill_ticket_ = 0;
  core::PeerAddress peer_;  // for the HTTP API's views
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace starling::broker
