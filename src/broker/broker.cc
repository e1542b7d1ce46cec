#include "broker/broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/events.h"
#include "metrics/counters.h"
#include "mqtt/topic.h"
#include "starling/version.h"

namespace starling::broker {

namespace {

// Subscribers of one publish, merged per session: the overlapping subscriptions of a session
// make one delivery at the highest QoS with all their identifiers (5.0 section 3.3.4).
struct Target {
  Session* session;
  uint8_t qos;
  bool retain_as_published;
  std::vector<uint32_t> subscription_ids;
  ShareKey share;
};

}  // namespace

Broker::Broker(const config::Config& config, store::Store* store)
    : store_(store),
      settings_(std::make_shared<const config::Config>(config)),
      started_at_(Clock::now()) {}

SessionPtr Broker::make_session(const std::string& client_id) {
  auto session = std::make_shared<Session>(client_id, connections_);
  session->set_store(store_);
  session->set_limits(delivery_limits());
  return session;
}

DeliveryLimits Broker::delivery_limits() const {
  auto s = settings();
  DeliveryLimits limits;
  limits.max_queued_messages = s->limits.max_queued_messages;
  limits.max_queued_bytes = s->limits.max_queued_bytes;
  limits.max_out_buffer_bytes = s->limits.max_out_buffer_bytes;
  limits.max_inflight = s->mqtt.max_inflight;
  limits.resident_messages = s->limits.queue_resident_messages;
  return limits;
}

void Broker::erase_client_records(store::Batch& batch, std::string_view client_id) {
  batch.del(store::session_key(client_id));
  batch.del(store::will_key(client_id));
  batch.del_prefix(store::client_prefix(store::Kind::Subscription, client_id));
  batch.del_prefix(store::client_prefix(store::Kind::Queued, client_id));
  batch.del_prefix(store::client_prefix(store::Kind::InboundQos2, client_id));
}

void Broker::write_session_record(const Session& session, uint32_t expiry,
                                  uint64_t disconnected_ms) {
  store::Batch batch;
  batch.put(store::session_key(session.client_id()),
            store::encode(store::SessionRecord{expiry, disconnected_ms}));
  store_->write_background(std::move(batch));
}

Broker::~Broker() = default;

std::shared_ptr<const config::Config> Broker::settings() const {
  std::lock_guard lock(settings_mutex_);
  return settings_;
}

void Broker::reload(const config::Config& fresh) {
  std::lock_guard lock(settings_mutex_);
  settings_ = std::make_shared<const config::Config>(fresh);
}

// --- Sessions -------------------------------------------------------------------------------

Broker::OpenResult Broker::open_session(const std::string& client_id, bool clean_start,
                                        uint32_t expiry, Attachment link,
                                        const ClientCapabilities& caps,
                                        const DeliveryLimits& limits) {
  OpenResult result;
  SessionPtr discarded;
  bool created = false;
  {
    std::lock_guard lock(sessions_mutex_);
    SessionPtr slot = sessions_.find(client_id);
    // A session without expiry (3.1.1 clean session, 5.0 expiry 0) ends with its connection,
    // which this one takes over: nothing of it to resume ([MQTT-3.1.2-6]).
    if (slot && (clean_start || slot->expiry_interval() == 0)) {
      // The old session ends here; its connection (if any) is kicked.
      discarded = std::move(slot);
    }
    if (slot) {
      result.taken_over = slot->attach(link, caps, limits);
      result.present = true;
    } else {
      slot = make_session(client_id);
      slot->attach(link, caps, limits);
      sessions_.put(slot);  // in place of the discarded one
      created = true;
    }
    slot->set_expiry_interval(expiry);
    result.session = slot;
  }
  if (store_) {
    // Only persistent sessions have records, and all of them are in sessions_ (restored at
    // start, removed with their records), so a clean session costs no store write.
    store::Batch batch;
    if (discarded && discarded->has_records()) erase_client_records(batch, client_id);
    if (expiry > 0) {
      batch.put(store::session_key(client_id), store::encode(store::SessionRecord{expiry, 0}));
    }
    if (!batch.empty()) store_->write_background(std::move(batch));
  }
  cancel_will(client_id);
  if (cluster_) cluster_->session_opened(client_id, clean_start, expiry, link);
  if (discarded) {
    // Stop deliveries to it before anything else: detach whatever connection it had.
    auto previous = discarded->attach(Attachment{}, ClientCapabilities{}, DeliveryLimits{});
    result.taken_over = previous;
    end_session(discarded, Clock::now(), "discarded");
  }
  if (created && Events::wanted(EventKind::SessionCreated)) {
    Event e;
    e.kind = EventKind::SessionCreated;
    e.client_id = client_id;
    Events::emit(std::move(e));
  }
  return result;
}

void Broker::close_session(const SessionPtr& session, Attachment link, Clock::time_point now) {
  if (!session->detach(link)) return;  // taken over: the session lives on elsewhere
  uint32_t expiry = session->expiry_interval();
  if (expiry == 0) {
    end_session(session, now, "closed");
    return;
  }
  session->mark_disconnected(now);
  if (store_) write_session_record(*session, expiry, wall_clock_ms());
  hand_over_shared(session, now);
  if (expiry != 0xFFFFFFFF) {
    std::lock_guard lock(sessions_mutex_);
    expiry_queue_.emplace(now + std::chrono::seconds(expiry), session);
  }
}

void Broker::end_session(const SessionPtr& session, Clock::time_point now, const char* why) {
  {
    std::lock_guard lock(sessions_mutex_);
    // Only while it still owns the client id: a newer session of the client owns the
    // records otherwise.
    if (sessions_.erase(session)) {
      if (store_ && session->has_records()) {
        store::Batch batch;
        erase_client_records(batch, session->client_id());
        store_->write_background(std::move(batch));
      }
    }
  }
  {
    std::unique_lock lock(tree_mutex_);
    for (const auto& [filter, options] : session->subscriptions()) {
      if (tree_.unsubscribe(session.get(), filter) && cluster_) {
        cluster_->subscription_removed(filter);
      }
    }
  }
  auto shared = session->take_shared_undelivered();
  if (const size_t lost = session->end_and_count_undelivered(); lost > 0) {
    metrics::add(metrics::Counter::DroppedSessionEnded, lost);
    spdlog::debug("session {} ended with {} undelivered messages (dropped)", session->client_id(),
                  lost);
  }
  redeliver_shared(std::move(shared), session.get(), now);
  if (Events::wanted(EventKind::SessionTerminated)) {
    Event e;
    e.kind = EventKind::SessionTerminated;
    e.client_id = session->client_id();
    e.reason = why;
    Events::emit(std::move(e));
  }
}

// --- Publish --------------------------------------------------------------------------------

Session* Broker::pick_shared_member(SharedGroup& group, const Session* exclude) {
  const size_t n = group.members.size();
  if (n == 0) return nullptr;
  const uint32_t start = group.next.fetch_add(1, std::memory_order_relaxed);
  Session* fallback = nullptr;
  for (size_t i = 0; i < n; ++i) {
    Session* s = group.members[(start + i) % n].session;
    if (s == exclude) continue;
    if (s->online()) return s;
    if (!fallback) fallback = s;
  }
  return fallback;  // nobody online: queue in a persistent member's session
}

PublishOutcome Broker::publish(const MessagePtr& msg, const Session* publisher,
                               Attachment publisher_link, Clock::time_point now,
                               PublishBatch* durable) {
  PublishOutcome outcome;
  // The bridge first: its store writes join the publish's batch like the queues' do.
  // A message from another node was offered to Kafka there.
  if (bridge_ && !msg->from_bridge && !msg->cluster_scope) {
    bridge_->on_publish(msg, publisher_link, durable, outcome);
  }
  // A retained message from another node arrives through the cluster's retained log, in the
  // log's order (apply_retained); its forward only carries it to subscribers.
  if (msg->retain && !msg->cluster_scope) {
    {
      std::unique_lock lock(retained_mutex_);
      retained_.set(msg);
    }
    if (store_) {
      store::Batch own;
      store::Batch& batch = durable ? durable->batch() : own;
      if (msg->payload.empty()) {
        batch.del(store::retained_key(msg->topic));
      } else {
        batch.put(store::retained_key(msg->topic), store::encode(to_record(*msg, now)));
      }
      if (&batch == &own) store_->write(std::move(own));
    }
  }

  thread_local std::vector<Subscriber> matches;
  thread_local std::vector<SharedGroup*> groups;
  thread_local std::vector<Target> targets;
  matches.clear();
  groups.clear();
  targets.clear();

  std::shared_lock lock(tree_mutex_);
  tree_.match(msg->topic, matches, groups);
  if (const ClusterScope* scope = msg->cluster_scope.get()) {
    // Forwarded here: only the receivers the sending node picked this node for.
    if (!scope->plain) {
      matches.clear();
    } else if (!scope->client.empty()) {
      std::erase_if(matches, [scope](const Subscriber& s) {
        return s.session->client_id() != scope->client;
      });
    }
    std::erase_if(groups, [scope](const SharedGroup* g) {
      return std::find(scope->groups.begin(), scope->groups.end(), g->key) == scope->groups.end();
    });
  } else if (cluster_) {
    cluster_->forward(msg, groups, publisher_link, durable, outcome);
  }

  for (const Subscriber& sub : matches) {
    if (sub.options.no_local && sub.session == publisher) continue;
    targets.push_back(
        Target{sub.session, sub.options.qos, sub.options.retain_as_published, {}, nullptr});
    if (sub.options.subscription_id) {
      targets.back().subscription_ids.push_back(sub.options.subscription_id);
    }
  }
  // Merge the overlapping subscriptions of one session.
  if (targets.size() > 1) {
    std::sort(targets.begin(), targets.end(),
              [](const Target& a, const Target& b) { return a.session < b.session; });
    size_t w = 0;
    for (size_t r = 1; r < targets.size(); ++r) {
      if (targets[r].session == targets[w].session) {
        targets[w].qos = std::max(targets[w].qos, targets[r].qos);
        targets[w].retain_as_published |= targets[r].retain_as_published;
        for (uint32_t id : targets[r].subscription_ids) {
          targets[w].subscription_ids.push_back(id);
        }
      } else {
        targets[++w] = std::move(targets[r]);
      }
    }
    targets.resize(w + 1);
  }
  for (SharedGroup* group : groups) {
    Session* member = pick_shared_member(*group, nullptr);
    if (!member) {
      metrics::add(metrics::Counter::DroppedNoSharedMember);
      continue;
    }
    auto it = std::find_if(group->members.begin(), group->members.end(),
                           [&](const Subscriber& s) { return s.session == member; });
    Target t{member,
             it->options.qos,
             it->options.retain_as_published,
             {},
             std::make_shared<const std::string>(group->name)};
    if (it->options.subscription_id) t.subscription_ids.push_back(it->options.subscription_id);
    targets.push_back(std::move(t));
  }

  if (targets.empty()) {
    if (outcome.receivers == 0) metrics::add(metrics::Counter::MessagesNoSubscriber);
    return outcome;
  }
  metrics::add(metrics::Counter::MessagesRouted);

  // Encode once per wire variant before any receiver can see the message.
  for (const Target& t : targets) {
    prepare_variant(*msg, t.session->version_hint(), std::min(t.qos, msg->qos) > 0);
  }

  Session* congested_session = nullptr;
  for (Target& t : targets) {
    Delivery d;
    d.message = msg;
    d.qos = std::min(t.qos, msg->qos);
    d.retain = t.retain_as_published && msg->retain;
    d.subscription_ids = std::move(t.subscription_ids);
    d.share = std::move(t.share);
    bool congested = false;
    DeliverResult result = t.session->deliver(std::move(d), now, congested, durable);
    if (result == DeliverResult::Denied) continue;
    if (result == DeliverResult::Dropped) {
      ++outcome.dropped;
    } else {
      ++outcome.receivers;
      if (result == DeliverResult::Queued) metrics::add(metrics::Counter::MessagesQueued);
    }
    if (congested && !congested_session) congested_session = t.session;
  }
  if (congested_session && publisher_link && msg->qos > 0) {
    congested_session->add_waiter(publisher_link);
    outcome.congested = true;
    metrics::add(metrics::Counter::PublishersThrottled);
  }
  return outcome;
}

void Broker::redeliver_shared(std::vector<Delivery>&& deliveries, const Session* leaving,
                              Clock::time_point now) {
  if (deliveries.empty()) return;
  std::vector<Subscriber> matches;
  std::vector<SharedGroup*> groups;
  size_t orphans = 0;
  std::shared_lock lock(tree_mutex_);
  for (Delivery& d : deliveries) {
    matches.clear();
    groups.clear();
    tree_.match(d.message->topic, matches, groups);
    Session* member = nullptr;
    for (SharedGroup* group : groups) {
      if (group->name == *d.share) member = pick_shared_member(*group, leaving);
      if (member) break;
    }
    if (!member) {
      ++orphans;
      continue;
    }
    bool congested = false;
    member->deliver(std::move(d), now, congested);
  }
  if (orphans > 0) {
    metrics::add(metrics::Counter::DroppedNoSharedMember, orphans);
    spdlog::debug("{} shared subscription messages dropped: no member left in their group",
                  orphans);
  }
}

void Broker::hand_over_shared(const SessionPtr& session, Clock::time_point now) {
  auto candidates = session->shared_undelivered_groups();
  if (candidates.empty()) return;
  // Only to groups with another member online: otherwise they wait here for this client.
  std::set<std::string> takeable;
  {
    std::vector<Subscriber> matches;
    std::vector<SharedGroup*> groups;
    std::shared_lock lock(tree_mutex_);
    for (const auto& [name, topic] : candidates) {
      matches.clear();
      groups.clear();
      tree_.match(topic, matches, groups);
      for (SharedGroup* group : groups) {
        if (group->name != name) continue;
        for (const Subscriber& m : group->members) {
          if (m.session != session.get() && m.session->online()) takeable.insert(name);
        }
      }
    }
  }
  if (takeable.empty()) return;
  redeliver_shared(session->take_shared_undelivered(&takeable), session.get(), now);
}

// --- The cluster ----------------------------------------------------------------------------

void Broker::client_taken_elsewhere(const std::string& client_id, bool ends,
                                    Clock::time_point now) {
  cancel_will(client_id);
  SessionPtr session;
  {
    std::lock_guard lock(sessions_mutex_);
    session = sessions_.find(client_id);
    if (!session) return;
  }
  const Attachment previous = session->attach(Attachment{}, ClientCapabilities{}, DeliveryLimits{});
  if (previous) connections_.kick(previous, mqtt::reason::SessionTakenOver);
  if (ends || session->expiry_interval() == 0) {
    end_session(session, now, "moved");
    return;
  }
  session->mark_disconnected(now);
}

bool Broker::has_session(const std::string& client_id) const {
  std::lock_guard lock(sessions_mutex_);
  return sessions_.contains(client_id);
}

Broker::Departure Broker::hand_over_session(const std::string& client_id, Clock::time_point now,
                                            store::Batch* erase) {
  Departure out;
  SessionPtr session;
  {
    std::lock_guard lock(sessions_mutex_);
    session = sessions_.take(client_id);
    if (!session) return out;
    if (erase && session->has_records()) erase_client_records(*erase, client_id);
  }
  cancel_will(client_id);
  const Attachment previous = session->attach(Attachment{}, ClientCapabilities{}, DeliveryLimits{});
  if (previous) connections_.kick(previous, mqtt::reason::SessionTakenOver);
  out.found = true;
  out.expiry = session->expiry_interval();
  out.subscriptions = session->subscriptions();
  {
    // Out of the tree first: once the writer lock is held no publish can still reach it.
    std::unique_lock lock(tree_mutex_);
    for (const auto& [filter, options] : out.subscriptions) {
      if (tree_.unsubscribe(session.get(), filter) && cluster_) {
        cluster_->subscription_removed(filter);
      }
    }
  }
  out.state = session->export_and_end(now);
  return out;
}

void Broker::adopt_session(const std::string& client_id, uint32_t expiry,
                           std::vector<std::pair<std::string, SubscriptionOptions>>&& subscriptions,
                           Session::Exported&& state, Clock::time_point now, store::Batch* batch) {
  SessionPtr session;
  bool fresh = false;
  {
    std::lock_guard lock(sessions_mutex_);
    SessionPtr slot = sessions_.find(client_id);
    if (!slot) {
      slot = make_session(client_id);
      sessions_.put(slot);
      slot->set_expiry_interval(expiry);
      slot->mark_disconnected(now);
      fresh = true;
      if (expiry != 0xFFFFFFFF) {
        expiry_queue_.emplace(now + std::chrono::seconds(expiry), std::weak_ptr<Session>(slot));
      }
    }
    session = slot;
  }
  if (fresh) {
    if (store_ && batch && expiry > 0) {
      batch->put(store::session_key(client_id),
                 store::encode(store::SessionRecord{expiry, wall_clock_ms()}));
    }
    for (auto& [filter, options] : subscriptions) {
      bool added;
      {
        std::unique_lock lock(tree_mutex_);
        added = tree_.subscribe(session.get(), filter, options);
      }
      if (added && cluster_) cluster_->subscription_added(filter);
      session->remember_subscription(filter, options);
      if (store_ && batch && expiry > 0) {
        batch->put(store::subscription_key(client_id, filter),
                   store::encode(store::SubscriptionRecord{
                       options.qos, options.no_local, options.retain_as_published,
                       options.retain_handling, options.subscription_id}));
      }
    }
  }
  const size_t expired = session->adopt(std::move(state.messages), state.inbound_qos2, fresh, now,
                                        store_ ? batch : nullptr);
  if (expired > 0) metrics::add(metrics::Counter::DroppedExpired, expired);
  spdlog::debug("session '{}' arrived from another node ({})", client_id,
                fresh ? "resumed" : "merged into the session here");
}

void Broker::apply_retained(const MessagePtr& msg, Clock::time_point now) {
  {
    std::unique_lock lock(retained_mutex_);
    retained_.set(msg);
  }
  if (!store_) return;
  store::Batch batch;
  if (msg->payload.empty()) {
    batch.del(store::retained_key(msg->topic));
  } else {
    batch.put(store::retained_key(msg->topic), store::encode(to_record(*msg, now)));
  }
  store_->write_background(std::move(batch));
}

// --- Subscriptions --------------------------------------------------------------------------

bool Broker::subscribe(const SessionPtr& session, const std::string& filter,
                       const SubscriptionOptions& options, uint64_t& ticket,
                       std::shared_ptr<AckGate>* route_wait) {
  bool existed;
  {
    std::unique_lock lock(tree_mutex_);
    existed = !tree_.subscribe(session.get(), filter, options);
  }
  if (!existed && cluster_) cluster_->subscription_added(filter, route_wait);
  session->remember_subscription(filter, options);
  if (session->persistent()) {
    store::Batch batch;
    batch.put(store::subscription_key(session->client_id(), filter),
              store::encode(store::SubscriptionRecord{
                  options.qos, options.no_local, options.retain_as_published,
                  options.retain_handling, options.subscription_id}));
    ticket = store_->write(std::move(batch));
  }
  return existed;
}

bool Broker::unsubscribe(const SessionPtr& session, const std::string& filter, uint64_t& ticket) {
  bool removed;
  {
    std::unique_lock lock(tree_mutex_);
    removed = tree_.unsubscribe(session.get(), filter);
  }
  if (removed && cluster_) cluster_->subscription_removed(filter);
  session->forget_subscription(filter);
  if (removed && session->persistent()) {
    store::Batch batch;
    batch.del(store::subscription_key(session->client_id(), filter));
    ticket = store_->write(std::move(batch));
  }
  return removed;
}

void Broker::deliver_retained(const SessionPtr& session, const std::string& filter,
                              const SubscriptionOptions& options, Clock::time_point now) {
  std::vector<MessagePtr> found;
  {
    std::shared_lock lock(retained_mutex_);
    retained_.match(filter, now, found);
  }
  for (const MessagePtr& msg : found) {
    Delivery d;
    d.message = msg;
    d.qos = std::min(options.qos, msg->qos);
    d.retain = true;  // retained messages sent on subscribe always carry the flag
    if (options.subscription_id) d.subscription_ids.push_back(options.subscription_id);
    bool congested = false;
    session->deliver(std::move(d), now, congested);
  }
}

// --- Wills ----------------------------------------------------------------------------------

MessagePtr make_will_message(const mqtt::Will& will, const std::string& client_id,
                             Clock::time_point now) {
  auto msg = std::make_shared<Message>();
  msg->topic = will.topic;
  msg->payload = will.payload;
  msg->qos = will.qos;
  msg->retain = will.retain;
  msg->received_at = now;
  msg->origin_client_id = client_id;
  mqtt::Properties p = will.properties;
  msg->properties = take_pass_through(p);
  if (p.message_expiry_interval) {
    msg->has_expiry = true;
    msg->expires_at = now + std::chrono::seconds(*p.message_expiry_interval);
  }
  return msg;
}

void Broker::publish_will(const mqtt::Will& will, const std::string& client_id,
                          Clock::time_point now) {
  publish(make_will_message(will, client_id, now), nullptr, Attachment{}, now);
}

void Broker::schedule_will(const mqtt::Will& will, const std::string& client_id,
                           Clock::time_point due) {
  {
    std::lock_guard lock(wills_mutex_);
    pending_wills_[client_id] = PendingWill{will, due, client_id};
  }
  if (store_) {
    const Clock::time_point now = Clock::now();
    store::WillRecord record;
    record.message = to_record(*make_will_message(will, client_id, now), now);
    record.delay_interval = will.properties.will_delay_interval.value_or(0);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count();
    record.due_ms = wall_clock_ms() + static_cast<uint64_t>(std::max<int64_t>(left, 0));
    store::Batch batch;
    batch.put(store::will_key(client_id), store::encode(record));
    store_->write_background(std::move(batch));
  }
}

void Broker::cancel_will(const std::string& client_id) {
  bool had;
  {
    std::lock_guard lock(wills_mutex_);
    had = pending_wills_.erase(client_id) > 0;
  }
  if (had && store_) {
    store::Batch batch;
    batch.del(store::will_key(client_id));
    store_->write_background(std::move(batch));
  }
}

// --- Restore from the store ---------------------------------------------------------------

void Broker::restore(Clock::time_point now) {
  if (!store_) return;
  const uint64_t wall = wall_clock_ms();
  store::Batch cleanup;  // what turns out expired or unreadable on the way
  size_t sessions = 0, subscriptions = 0, queued = 0, retained = 0, wills = 0, dropped = 0;
  auto corrupt = [&](std::string_view key) {
    throw store::StoreError("unreadable record in the store (key kind '" +
                            std::string(1, key.empty() ? '?' : key[0]) +
                            "'): the store is corrupt or from a newer Starling");
  };

  std::lock_guard sessions_lock(sessions_mutex_);
  store_->scan("S", [&](std::string_view key, std::string_view value) {
    std::string client;
    store::SessionRecord r;
    if (!store::parse_client_key(key, client) || !store::decode(value, r)) corrupt(key);
    // Offline since it went away, or since the crash when it was online then.
    const uint64_t since_ms = r.disconnected_at_ms ? r.disconnected_at_ms : wall;
    const uint64_t offline_ms = wall > since_ms ? wall - since_ms : 0;
    if (r.expiry_interval != 0xFFFFFFFF && offline_ms >= uint64_t{r.expiry_interval} * 1000) {
      erase_client_records(cleanup, client);
      return true;
    }
    auto session = make_session(client);
    session->set_expiry_interval(r.expiry_interval);
    const Clock::time_point disconnected_at = now - std::chrono::milliseconds(offline_ms);
    session->mark_disconnected(disconnected_at);
    if (r.expiry_interval != 0xFFFFFFFF) {
      expiry_queue_.emplace(disconnected_at + std::chrono::seconds(r.expiry_interval), session);
    }
    sessions_.put(std::move(session));
    ++sessions;
    return true;
  });

  auto find = [&](const std::string& client) -> SessionPtr { return sessions_.find(client); };

  store_->scan("B", [&](std::string_view key, std::string_view value) {
    std::string client, filter;
    store::SubscriptionRecord r;
    if (!store::parse_subscription_key(key, client, filter) || !store::decode(value, r)) {
      corrupt(key);
    }
    SessionPtr session = find(client);
    if (!session) return true;  // its session expired: cleaned up above
    SubscriptionOptions options{r.qos, r.no_local, r.retain_as_published, r.retain_handling,
                                r.subscription_id};
    bool added;
    {
      std::unique_lock lock(tree_mutex_);
      added = tree_.subscribe(session.get(), filter, options);
    }
    if (added && cluster_) cluster_->subscription_added(filter);
    session->remember_subscription(filter, options);
    ++subscriptions;
    return true;
  });

  const uint32_t resident_limit = delivery_limits().resident_messages;
  store_->scan("Q", [&](std::string_view key, std::string_view value) {
    std::string client;
    uint64_t seq;
    store::QueuedRecord r;
    if (!store::parse_queued_key(key, client, seq) || !store::decode(value, r)) corrupt(key);
    SessionPtr session = find(client);
    if (!session) return true;
    if (r.state == store::QueueState::Queued && session->resident_queued() >= resident_limit) {
      session->restore_spilled(seq, r.message.topic.size() + r.message.payload.size() + 64);
      ++queued;
      return true;
    }
    MessagePtr msg = from_record(std::move(r.message), now);
    if (!msg) {
      cleanup.del(key);
      ++dropped;
      return true;
    }
    Delivery d;
    d.message = std::move(msg);
    d.qos = r.qos;
    d.retain = r.retain;
    d.subscription_ids = std::move(r.subscription_ids);
    if (!r.share_group.empty()) d.share = std::make_shared<const std::string>(r.share_group);
    session->restore_queued(seq, std::move(d), r.state, r.packet_id);
    ++queued;
    return true;
  });

  store_->scan("I", [&](std::string_view key, std::string_view) {
    std::string client;
    uint16_t packet_id;
    if (!store::parse_inbound_key(key, client, packet_id)) corrupt(key);
    if (SessionPtr session = find(client)) session->begin_inbound_qos2(packet_id);
    return true;
  });

  store_->scan("R", [&](std::string_view key, std::string_view value) {
    std::string topic;
    store::MessageRecord r;
    if (!store::parse_retained_key(key, topic) || !store::decode(value, r)) corrupt(key);
    MessagePtr msg = from_record(std::move(r), now);
    if (!msg) {
      cleanup.del(key);
      return true;
    }
    std::unique_lock lock(retained_mutex_);
    retained_.set(std::move(msg));
    ++retained;
    return true;
  });

  store_->scan("W", [&](std::string_view key, std::string_view value) {
    std::string client;
    store::WillRecord r;
    if (!store::parse_client_key(key, client) || !store::decode(value, r)) corrupt(key);
    MessagePtr msg = from_record(std::move(r.message), now);
    if (!msg) {
      cleanup.del(key);
      return true;
    }
    mqtt::Will will;
    will.topic = msg->topic;
    will.payload = msg->payload;
    will.qos = msg->qos;
    will.retain = msg->retain;
    if (const MessageProperties* p = msg->properties.get()) {
      will.properties.payload_format_indicator = p->payload_format_indicator;
      will.properties.content_type = p->content_type;
      will.properties.response_topic = p->response_topic;
      will.properties.correlation_data = p->correlation_data;
      will.properties.user_properties = p->user_properties;
    }
    if (msg->has_expiry) will.properties.message_expiry_interval = msg->remaining_expiry(now);
    const Clock::time_point due =
        now + std::chrono::milliseconds(r.due_ms > wall ? r.due_ms - wall : 0);
    std::lock_guard lock(wills_mutex_);
    pending_wills_[client] = PendingWill{std::move(will), due, client};
    ++wills;
    return true;
  });

  if (!cleanup.empty()) store_->write_background(std::move(cleanup));
  spdlog::info(
      "restored from {}: {} sessions, {} subscriptions, {} queued messages, {} retained, "
      "{} delayed wills ({} expired messages dropped)",
      store_->dir(), sessions, subscriptions, queued, retained, wills, dropped);
}

// --- Housekeeping ---------------------------------------------------------------------------

void Broker::tick(Clock::time_point now) {
  std::vector<PendingWill> due;
  {
    std::lock_guard lock(wills_mutex_);
    for (auto it = pending_wills_.begin(); it != pending_wills_.end();) {
      if (it->second.due <= now) {
        due.push_back(std::move(it->second));
        it = pending_wills_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& w : due) {
    publish_will(w.will, w.client_id, now);
    if (store_) {
      store::Batch batch;
      batch.del(store::will_key(w.client_id));
      store_->write_background(std::move(batch));
    }
  }

  std::vector<SessionPtr> expired;
  {
    std::lock_guard lock(sessions_mutex_);
    while (!expiry_queue_.empty() && expiry_queue_.begin()->first <= now) {
      if (auto s = expiry_queue_.begin()->second.lock()) {
        if (s->expired(now)) expired.push_back(std::move(s));
      }
      expiry_queue_.erase(expiry_queue_.begin());
    }
  }
  for (const auto& s : expired) {
    spdlog::debug("session {} expired", s->client_id());
    end_session(s, now, "expired");
  }

  {
    std::unique_lock lock(retained_mutex_);
    retained_.purge_expired(now);
  }

  auto interval = settings()->sys.interval_s;
  if (interval > 0 && now >= next_sys_) {
    next_sys_ = now + std::chrono::seconds(interval);
    publish_sys(now);
  }
}

void Broker::publish_sys(Clock::time_point now) {
  using metrics::Counter;
  auto put = [&](std::string topic, std::string value) {
    auto msg = std::make_shared<Message>();
    msg->topic = std::move(topic);
    msg->payload = std::move(value);
    msg->retain = true;
    msg->received_at = now;
    publish(msg, nullptr, Attachment{}, now);
  };
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - started_at_).count();
  put("$SYS/broker/version", std::string("starling ") + STARLING_VERSION);
  put("$SYS/broker/uptime", std::to_string(uptime));
  put("$SYS/broker/clients/connected", std::to_string(connected_clients()));
  put("$SYS/broker/clients/total", std::to_string(session_count()));
  put("$SYS/broker/messages/received", std::to_string(metrics::total(Counter::MessagesReceived)));
  put("$SYS/broker/messages/sent", std::to_string(metrics::total(Counter::MessagesSent)));
  put("$SYS/broker/messages/dropped", std::to_string(metrics::total_dropped()));
  for (const metrics::DropReason& r : metrics::kDropReasons) {
    put(std::string("$SYS/broker/messages/dropped/") + r.label,
        std::to_string(metrics::total(r.counter)));
  }
  put("$SYS/broker/bytes/received", std::to_string(metrics::total(Counter::BytesReceived)));
  put("$SYS/broker/bytes/sent", std::to_string(metrics::total(Counter::BytesSent)));
  put("$SYS/broker/subscriptions/count", std::to_string(subscription_count()));
  put("$SYS/broker/retained messages/count", std::to_string(retained_count()));
}

size_t Broker::session_count() const {
  std::lock_guard lock(sessions_mutex_);
  return sessions_.size();
}

size_t Broker::subscription_count() const {
  std::shared_lock lock(tree_mutex_);
  return tree_.subscription_count();
}

size_t Broker::retained_count() const {
  std::shared_lock lock(retained_mutex_);
  return retained_.size();
}

}  // namespace starling::broker
