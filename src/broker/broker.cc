#include "broker/broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

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

Broker::Broker(const config::Config& config)
    : settings_(std::make_shared<const config::Config>(config)), started_at_(Clock::now()) {}

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
  {
    std::lock_guard lock(sessions_mutex_);
    SessionPtr& slot = sessions_[client_id];
    if (slot && clean_start) {
      // The old session ends here; its connection (if any) is kicked.
      discarded = slot;
      slot.reset();
    }
    if (slot) {
      result.taken_over = slot->attach(link, caps, limits);
      result.present = true;
    } else {
      slot = std::make_shared<Session>(client_id);
      slot->attach(link, caps, limits);
    }
    slot->set_expiry_interval(expiry);
    result.session = slot;
  }
  cancel_will(client_id);
  if (discarded) {
    // Stop deliveries to it before anything else: detach whatever connection it had.
    auto previous = discarded->attach(Attachment{}, ClientCapabilities{}, DeliveryLimits{});
    result.taken_over = previous;
    end_session(discarded, Clock::now());
  }
  return result;
}

void Broker::close_session(const SessionPtr& session, Attachment link, Clock::time_point now) {
  if (!session->detach(link)) return;  // taken over: the session lives on elsewhere
  uint32_t expiry = session->expiry_interval();
  if (expiry == 0) {
    end_session(session, now);
    return;
  }
  session->mark_disconnected(now);
  if (expiry != 0xFFFFFFFF) {
    std::lock_guard lock(sessions_mutex_);
    expiry_queue_.emplace(now + std::chrono::seconds(expiry), session);
  }
}

void Broker::end_session(const SessionPtr& session, Clock::time_point now) {
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(session->client_id());
    if (it != sessions_.end() && it->second == session) sessions_.erase(it);
  }
  {
    std::unique_lock lock(tree_mutex_);
    for (const auto& [filter, options] : session->subscriptions()) {
      tree_.unsubscribe(session.get(), filter);
    }
  }
  redeliver_shared(session->take_shared_undelivered(), session.get(), now);
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
                               Attachment publisher_link, Clock::time_point now) {
  PublishOutcome outcome;
  if (msg->retain) {
    std::unique_lock lock(retained_mutex_);
    retained_.set(msg);
  }

  thread_local std::vector<Subscriber> matches;
  thread_local std::vector<SharedGroup*> groups;
  thread_local std::vector<Target> targets;
  matches.clear();
  groups.clear();
  targets.clear();

  std::shared_lock lock(tree_mutex_);
  tree_.match(msg->topic, matches, groups);

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
    if (!member) continue;
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
    metrics::add(metrics::Counter::MessagesNoSubscriber);
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
    if (t.session->deliver(std::move(d), now, congested) != DeliverResult::Dropped) {
      ++outcome.receivers;
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
  std::shared_lock lock(tree_mutex_);
  for (Delivery& d : deliveries) {
    matches.clear();
    groups.clear();
    tree_.match(d.message->topic, matches, groups);
    for (SharedGroup* group : groups) {
      if (group->name != *d.share) continue;
      Session* member = pick_shared_member(*group, leaving);
      if (!member) continue;
      bool congested = false;
      Delivery again = d;
      member->deliver(std::move(again), now, congested);
      break;
    }
  }
}

// --- Subscriptions --------------------------------------------------------------------------

bool Broker::subscribe(const SessionPtr& session, const std::string& filter,
                       const SubscriptionOptions& options) {
  bool existed;
  {
    std::unique_lock lock(tree_mutex_);
    existed = !tree_.subscribe(session.get(), filter, options);
  }
  session->remember_subscription(filter, options);
  return existed;
}

bool Broker::unsubscribe(const SessionPtr& session, const std::string& filter) {
  bool removed;
  {
    std::unique_lock lock(tree_mutex_);
    removed = tree_.unsubscribe(session.get(), filter);
  }
  session->forget_subscription(filter);
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
  std::lock_guard lock(wills_mutex_);
  pending_wills_[client_id] = PendingWill{will, due, client_id};
}

void Broker::cancel_will(const std::string& client_id) {
  std::lock_guard lock(wills_mutex_);
  pending_wills_.erase(client_id);
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
  for (const auto& w : due)
    publish_will(w.will, w.client_id, now);

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
    end_session(s, now);
  }

  {
    std::unique_lock lock(retained_mutex_);
    retained_.purge_expired(now);
  }

  auto interval = settings()->sys_interval_s;
  if (interval > 0 && now >= next_sys_) {
    next_sys_ = now + std::chrono::seconds(interval);
    publish_sys(now);
  }
}

void Broker::publish_sys(Clock::time_point now) {
  using metrics::Counter;
  auto put = [&](const char* topic, std::string value) {
    auto msg = std::make_shared<Message>();
    msg->topic = topic;
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
  put("$SYS/broker/messages/dropped", std::to_string(metrics::total(Counter::DroppedQueueFull) +
                                                     metrics::total(Counter::DroppedExpired) +
                                                     metrics::total(Counter::DroppedTooLarge) +
                                                     metrics::total(Counter::DroppedOfflineQos0)));
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
