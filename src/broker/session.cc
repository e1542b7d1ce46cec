#include "broker/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/events.h"
#include "core/event_loop.h"
#include "core/rate_limit.h"
#include "metrics/counters.h"
#include "metrics/histogram.h"
#include "mqtt/codec.h"

namespace starling::broker {

const DeliveryLimits* DeliveryLimits::shared(const DeliveryLimits& limits) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<const DeliveryLimits>> all;
  std::lock_guard lock(mutex);
  for (const auto& l : all)
    if (*l == limits) return l.get();
  return all.emplace_back(std::make_unique<const DeliveryLimits>(limits)).get();
}

namespace {
core::RateLimit g_drop_log{std::chrono::seconds(10)};

void count_drop(metrics::Counter why, std::string_view client_id, const char* what) {
  metrics::add(why);
  if (g_drop_log.allow()) {
    spdlog::warn(
        "dropping messages for client '{}': {} (counted in $SYS/broker/messages/dropped;"
        " logged at most every 10 s)",
        client_id, what);
  }
}

// message.delivered and message.dropped for the webhooks; one load when none wants them.
void message_event(EventKind kind, const Delivery& d, std::string_view receiver,
                   const char* reason) {
  if (!Events::wanted(kind)) return;
  const Message& m = *d.message;
  if (!Events::wants_topic(kind, m.topic)) return;
  Event e;
  e.kind = kind;
  e.client_id = receiver;
  e.message = d.message;
  e.qos = d.qos;
  e.retain = d.retain;
  if (reason != nullptr) e.reason = reason;
  Events::emit(std::move(e));
}

size_t delivery_bytes(const Delivery& d) {
  return d.message->topic.size() + d.message->payload.size() + 64;
}

// Wakes the owner after the session lock is released: the eventfd write is a syscall.
struct WakeAfterUnlock {
  Attachment target;
  ~WakeAfterUnlock() {
    if (target) target.loop->wake(target.token);
  }
};
}  // namespace

Session::Session(std::string client_id, ConnectionControl& connections)
    : connections_(connections),
      client_id_(std::move(client_id)),
      limits_(DeliveryLimits::shared(DeliveryLimits{})) {}

size_t Session::send_quota_locked() const {
  return std::min<size_t>(receive_maximum_, limits_->max_inflight);
}

DeliverResult Session::deliver(Delivery&& d, Clock::time_point now, bool& congested,
                               PublishBatch* durable) {
  WakeAfterUnlock waker;
  std::lock_guard lock(mutex_);
  if (!may_read_locked(d.message->topic)) {
    metrics::add(metrics::Counter::AclDeniedRead);
    return DeliverResult::Denied;
  }
  if (!link_) {
    if (d.qos == 0) {
      metrics::add(metrics::Counter::DroppedOfflineQos0);  // by design, not worth a log line
      message_event(EventKind::MessageDropped, d, client_id_, "offline_qos0");
      return DeliverResult::Dropped;
    }
  } else if (d.qos == 0) {
    if (out_ && out_->size() >= limits_->max_out_buffer_bytes) {
      count_drop(metrics::Counter::DroppedQueueFull, client_id_,
                 "QoS 0 output buffer full (slow reader)");
      message_event(EventKind::MessageDropped, d, client_id_, "queue_full");
      return DeliverResult::Dropped;
    }
    // Too large for the client: discarded as if it had been sent ([MQTT-3.1.2-25]), counted
    // too_large; for the publisher it was delivered (no 0x97 for it).
    if (!write_publish_locked(d, 0, false, now)) return DeliverResult::Sent;
    if (!wake_pending_) {
      wake_pending_ = true;
      waker.target = link_;
    }
    return DeliverResult::Sent;
  } else if (queue_.empty() && spilled_ == 0 && inflight_.size() < send_quota_locked()) {
    // (Not past messages that wait in the store: they go first, and a record sent here would
    // be read back by refill as one of them: sent twice, and one of them never.)
    uint16_t id = next_packet_id_locked();
    if (!write_publish_locked(d, id, false, now)) return DeliverResult::Sent;  // as above
    if (persistent_locked()) {
      // QoS 2 leaves only once its record, with the packet id a resend must reuse, is
      // durable. QoS 1 need not wait: after a crash it is resent (a new packet id is fine),
      // which at-least-once allows, and so is a copy the publisher then sends again.
      d.store_seq = next_seq_++;
      const bool exactly_once = d.qos == 2;
      const auto state = exactly_once ? store::QueueState::Sent : store::QueueState::Queued;
      const uint16_t stored_id = exactly_once ? id : 0;
      if (durable) {
        durable->batch().put(store::queued_key(client_id_, d.store_seq),
                             store::encode(record_locked(d, state, stored_id, now)));
        if (exactly_once) fence_ = std::max(fence_, durable->ticket());
      } else {
        uint64_t ticket = write_record_locked(d, state, stored_id, now);
        if (exactly_once) fence_ = std::max(fence_, ticket);
      }
    }
    inflight_.push_back(Inflight{std::move(d), id, false});
    if (!wake_pending_) {
      wake_pending_ = true;
      waker.target = link_;
    }
    return DeliverResult::Sent;
  }
  // Queue: offline persistent session, or the client's receive window is full.
  size_t bytes = delivery_bytes(d);
  if (queue_.size() + spilled_ >= limits_->max_queued_messages ||
      queue_bytes_ + bytes > limits_->max_queued_bytes) {
    count_drop(metrics::Counter::DroppedQueueFull, client_id_, "session queue full");
    message_event(EventKind::MessageDropped, d, client_id_, "queue_full");
    return DeliverResult::Dropped;
  }
  queue_bytes_ += bytes;
  if (persistent_locked()) {
    d.store_seq = next_seq_++;
    uint64_t ticket = 0;
    if (durable) {
      durable->batch().put(store::queued_key(client_id_, d.store_seq),
                           store::encode(record_locked(d, store::QueueState::Queued, 0, now)));
      ticket = durable->ticket();
    } else {
      ticket = write_record_locked(d, store::QueueState::Queued, 0, now);
    }
    if (spilled_ > 0 || queue_.size() >= limits_->resident_messages) {
      // Beyond the resident limit the message lives in the store only (read back in order
      // by refill), so offline sessions with huge queues do not fill memory.
      if (spilled_ == 0) spill_from_seq_ = d.store_seq;
      ++spilled_;
      spill_ticket_ = std::max(spill_ticket_, ticket);
      if (link_ && (queue_.size() + spilled_) * 2 >= limits_->max_queued_messages) {
        congested = true;
      }
      return DeliverResult::Queued;
    }
  }
  queue_.push_back(std::move(d));
  if (link_ && queue_.size() * 2 >= limits_->max_queued_messages) congested = true;
  return DeliverResult::Queued;
}

uint16_t Session::next_packet_id_locked() {
  for (;;) {
    last_packet_id_ = static_cast<uint16_t>(last_packet_id_ + 1);
    if (last_packet_id_ == 0) continue;
    bool in_use = std::any_of(inflight_.begin(), inflight_.end(),
                              [&](const Inflight& f) { return f.packet_id == last_packet_id_; });
    if (!in_use) return last_packet_id_;
  }
}

bool Session::write_publish_locked(const Delivery& d, uint16_t packet_id, bool dup,
                                   Clock::time_point now) {
  const Message& m = *d.message;
  const bool v5 = version_locked() == mqtt::Version::V5;
  const bool with_id = d.qos > 0;
  std::string& out = output_locked();
  const size_t start = out.size();
  // The message expiry sent is what is left of it; it only differs from the encoded one once
  // the message waited a second or more.
  const bool restamp = m.has_expiry && now - m.received_at >= std::chrono::seconds(1);
  const bool per_receiver =
      v5 && (!d.subscription_ids.empty() || restamp || topic_alias_maximum_ > 0);
  const EncodedPublish& cached = m.encoded[v5][with_id];
  mqtt::PublishLayout layout;
  uint16_t new_alias = 0;
  if (!per_receiver && cached.ready) {
    out.append(cached.bytes);
    layout = cached.layout;
  } else {
    PerDelivery per;
    if (!d.subscription_ids.empty()) per.subscription_ids = &d.subscription_ids;
    per.expiry_seconds = m.remaining_expiry(now);
    if (v5 && topic_alias_maximum_ > 0) {
      if (!out_aliases_)
        out_aliases_ = std::make_unique<std::unordered_map<std::string, uint16_t>>();
      auto it = out_aliases_->find(m.topic);
      if (it != out_aliases_->end()) {
        per.topic_alias = it->second;
        per.omit_topic = true;
      } else if (out_aliases_->size() < topic_alias_maximum_) {
        new_alias = static_cast<uint16_t>(out_aliases_->size() + 1);
        per.topic_alias = new_alias;
      }
    }
    layout = encode_message(m, version_locked(), d.qos, per, out);
  }
  if (maximum_packet_size_ != 0 && layout.size > maximum_packet_size_) {
    // The client cannot take it: discard as if delivered (spec 3.1.2.11.4).
    out.resize(start);
    count_drop(metrics::Counter::DroppedTooLarge, client_id_,
               "message larger than the client's maximum packet size");
    message_event(EventKind::MessageDropped, d, client_id_, "too_large");
    return false;
  }
  if (new_alias) out_aliases_->emplace(m.topic, new_alias);
  mqtt::patch_publish(out.data() + start, layout, dup, d.qos, d.retain, packet_id);
  metrics::add(metrics::Counter::MessagesSent);
  metrics::count_packet_out(mqtt::PacketType::Publish);
  if (!dup) message_event(EventKind::MessageDelivered, d, client_id_, nullptr);
  // Live deliveries only: a resend (DUP) or a retained copy sent on SUBSCRIBE would measure
  // how long the message waited offline, not the broker. The loop's iteration time instead of a
  // clock read per delivery: what it shows is the waiting (receive windows, queues,
  // backpressure); a message sent in the iteration that read it counts as 0.
  if (!dup && !d.retain) {
    metrics::observe(metrics::Histogram::PublishToDeliver, core::EventLoop::now() - m.received_at);
  }
  return true;
}

void Session::write_pubrel_locked(uint16_t packet_id) {
  mqtt::Ack rel;
  rel.type = mqtt::PacketType::Pubrel;
  rel.packet_id = packet_id;
  mqtt::encode_ack(rel, version_locked(), output_locked());
  metrics::count_packet_out(mqtt::PacketType::Pubrel);
}

void Session::pump_locked(Clock::time_point now) {
  if (!link_) return;
  const size_t quota = send_quota_locked();
  while (!queue_.empty() && inflight_.size() < quota) {
    Delivery d = std::move(queue_.front());
    queue_.pop_front();
    queue_bytes_ -= std::min<uint64_t>(queue_bytes_, delivery_bytes(d));
    if (d.message->expired(now)) {
      metrics::add(metrics::Counter::DroppedExpired);
      message_event(EventKind::MessageDropped, d, client_id_, "expired");
      erase_record_locked(d);
      continue;
    }
    if (d.qos == 0) {
      write_publish_locked(d, 0, false, now);
      continue;
    }
    uint16_t id = next_packet_id_locked();
    if (!write_publish_locked(d, id, false, now)) {
      erase_record_locked(d);
      continue;
    }
    if (d.store_seq && d.qos == 2) {
      // Its packet id must be durable before it leaves: a resend after a crash reuses it.
      fence_ = std::max(fence_, write_record_locked(d, store::QueueState::Sent, id, now));
    }
    inflight_.push_back(Inflight{std::move(d), id, false});
  }
  if (!waiters_.empty() && queue_.size() * 4 <= limits_->max_queued_messages) {
    release_waiters_locked();
  }
}

void Session::release_waiters_locked() {
  for (const auto& w : waiters_)
    connections_.resume_reading(w);
  waiters_.clear();
}

Attachment Session::attach(Attachment link, const ClientCapabilities& caps,
                           const DeliveryLimits& limits) {
  std::lock_guard lock(mutex_);
  Attachment previous = link_;
  link_ = link;
  read_acl_ = caps.read_acl;
  receive_maximum_ = caps.receive_maximum;
  maximum_packet_size_ = caps.maximum_packet_size;
  topic_alias_maximum_ = caps.topic_alias_maximum;
  version_hint_.store(caps.version, std::memory_order_relaxed);
  drop_unreadable_locked();
  limits_ = DeliveryLimits::shared(limits);
  if (out_) out_->clear();
  out_aliases_.reset();
  wake_pending_ = false;
  fence_waiting_for_ = 0;  // a wake registered for the old connection does not reach this one
  return previous;
}

void Session::resume_delivery(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!link_) return;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (it->released) {
      write_pubrel_locked(it->packet_id);
    } else if (!write_publish_locked(it->delivery, it->packet_id, true, now)) {
      // Too large for the Maximum Packet Size of the new connection: discarded as if it had
      // completed sending ([MQTT-3.1.2-25]), so it frees its slot in the receive window.
      erase_record_locked(it->delivery);
      it = inflight_.erase(it);
      continue;
    }
    ++it;
  }
  pump_locked(now);
}

bool Session::detach(Attachment link) {
  std::lock_guard lock(mutex_);
  if (link_ != link) return false;
  link_ = Attachment{};
  if (out_) out_->clear();
  out_aliases_.reset();
  wake_pending_ = false;
  release_waiters_locked();
  return true;
}

bool Session::online() const {
  std::lock_guard lock(mutex_);
  return static_cast<bool>(link_);
}

bool Session::attached_to(Attachment link) const {
  std::lock_guard lock(mutex_);
  return link_ == link;
}

void Session::append_output(std::string_view bytes, Attachment link, uint64_t ticket) {
  std::lock_guard lock(mutex_);
  if (link_ != link) return;  // taken over: this connection is being closed
  output_locked().append(bytes);
  fence_ = std::max(fence_, ticket);
}

bool Session::take_output(std::string& out) {
  std::lock_guard lock(mutex_);
  if (store_ && fence_ > store_->durable()) {
    // Not before the store has what these bytes acknowledge; the store wakes us then.
    // Register again whenever the fence moved past what we wait for, or the wake for the
    // older ticket would find the fence still up and nobody would wake us after.
    wake_pending_ = true;
    if (link_ && fence_waiting_for_ < fence_) {
      fence_waiting_for_ = fence_;
      store_->when_durable(fence_, [link = link_] { link.loop->wake(link.token); });
    }
    return false;
  }
  if (out_) {
    if (out.empty()) {
      out.swap(*out_);
    } else {
      out.append(*out_);
    }
    out_->clear();
  }
  wake_pending_ = false;
  return spilled_ > 0 && !refilling_ && link_ && queue_.size() * 2 < limits_->resident_messages &&
         inflight_.size() < send_quota_locked();
}

void Session::release_idle_output() {
  std::lock_guard lock(mutex_);
  if (out_ && out_->empty()) out_.reset();
}

void Session::refill(Clock::time_point now) {
  uint64_t from;
  size_t want;
  {
    std::lock_guard lock(mutex_);
    if (spilled_ == 0 || refilling_ || !store_) return;
    from = spill_from_seq_;
    want = std::min<uint64_t>(
        spilled_,
        limits_->resident_messages - std::min<size_t>(queue_.size(), limits_->resident_messages));
    if (want == 0) return;
    refilling_ = true;
  }
  // What the store has written before the scan starts: spilled records of a later ticket
  // may not be there yet (their publish's batch is still on its way to the store).
  const uint64_t visible = store_->durable();
  // Read outside the lock: deliveries go on meanwhile (to the store, behind these).
  std::vector<std::pair<uint64_t, store::QueuedRecord>> page;
  const std::string prefix = store::client_prefix(store::Kind::Queued, client_id_);
  store_->scan(
      prefix,
      [&](std::string_view key, std::string_view value) {
        std::string client;
        uint64_t seq = 0;
        store::QueuedRecord r;
        if (!store::parse_queued_key(key, client, seq) || !store::decode(value, r)) {
          return true;  // unreadable: left for the operator (and counted below)
        }
        if (r.state == store::QueueState::Queued) page.emplace_back(seq, std::move(r));
        return page.size() < want;
      },
      store::queued_key(client_id_, from));
  std::lock_guard lock(mutex_);
  refilling_ = false;
  uint64_t loaded = 0;
  for (auto& [seq, r] : page) {
    if (seq < spill_from_seq_) continue;
    spill_from_seq_ = seq + 1;
    ++loaded;
    Delivery d;
    d.message = from_record(std::move(r.message), now);
    d.store_seq = seq;
    if (!d.message) {  // expired while it waited
      metrics::add(metrics::Counter::DroppedExpired);
      erase_record_locked(d);
      queue_bytes_ -= std::min<uint64_t>(queue_bytes_, 64);
      continue;
    }
    d.qos = r.qos;
    d.retain = r.retain;
    d.subscription_ids = std::move(r.subscription_ids);
    if (!r.share_group.empty()) d.share = std::make_shared<const std::string>(r.share_group);
    if (drop_if_unreadable_locked(d)) continue;  // queued under other rules
    queue_.push_back(std::move(d));
  }
  spilled_ -= static_cast<uint32_t>(std::min<size_t>(spilled_, loaded));
  const bool all_written = visible >= spill_ticket_;
  if (page.empty() && all_written) spilled_ = 0;  // nothing left in the store: a stale count
  if (spilled_ > 0 && loaded < want && !all_written && link_) {
    // Spilled records not written yet: read again once they are (a wake-up, then refill).
    store_->when_durable(spill_ticket_, [link = link_] { link.loop->wake(link.token); });
  }
  pump_locked(now);
}

Session::AckResult Session::on_puback(uint16_t packet_id, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(inflight_.begin(), inflight_.end(),
                         [&](const Inflight& f) { return f.packet_id == packet_id; });
  if (it == inflight_.end()) return AckResult::Unknown;
  if (it->delivery.qos != 1) return AckResult::WrongType;
  erase_record_locked(it->delivery);
  inflight_.erase(it);
  pump_locked(now);
  return AckResult::Done;
}

Session::AckResult Session::on_pubrec(uint16_t packet_id, Clock::time_point now, bool failed) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(inflight_.begin(), inflight_.end(),
                         [&](const Inflight& f) { return f.packet_id == packet_id; });
  if (it == inflight_.end()) return AckResult::Unknown;
  if (it->delivery.qos != 2) return AckResult::WrongType;
  if (failed) {
    // A PUBREC with an error code ends the exchange (5.0 section 4.3.3).
    erase_record_locked(it->delivery);
    inflight_.erase(it);
    pump_locked(now);
    return AckResult::Done;
  }
  it->released = true;
  if (it->delivery.store_seq) {
    fence_ = std::max(
        fence_, write_record_locked(it->delivery, store::QueueState::Released, packet_id, now));
  }
  write_pubrel_locked(packet_id);
  return AckResult::Done;
}

Session::AckResult Session::on_pubcomp(uint16_t packet_id, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(inflight_.begin(), inflight_.end(),
                         [&](const Inflight& f) { return f.packet_id == packet_id; });
  if (it == inflight_.end()) return AckResult::Unknown;
  if (!it->released) return AckResult::WrongType;  // QoS 1, or QoS 2 before its PUBREC
  erase_record_locked(it->delivery);
  inflight_.erase(it);
  pump_locked(now);
  return AckResult::Done;
}

bool Session::begin_inbound_qos2(uint16_t packet_id) {
  std::lock_guard lock(mutex_);
  if (!insert_inbound_qos2_locked(packet_id)) return false;
  inbound_qos2_size_.store(static_cast<uint32_t>(inbound_qos2_.size()), std::memory_order_relaxed);
  return true;
}

bool Session::release_inbound_qos2(uint16_t packet_id) {
  std::lock_guard lock(mutex_);
  auto it = std::lower_bound(inbound_qos2_.begin(), inbound_qos2_.end(), packet_id);
  if (it == inbound_qos2_.end() || *it != packet_id) return false;
  inbound_qos2_.erase(it);  // an emptied ring gives a burst's capacity back
  inbound_qos2_size_.store(static_cast<uint32_t>(inbound_qos2_.size()), std::memory_order_relaxed);
  return true;
}

bool Session::has_inbound_qos2(uint16_t packet_id) {
  std::lock_guard lock(mutex_);
  return std::binary_search(inbound_qos2_.begin(), inbound_qos2_.end(), packet_id);
}

bool Session::insert_inbound_qos2_locked(uint16_t packet_id) {
  auto it = std::lower_bound(inbound_qos2_.begin(), inbound_qos2_.end(), packet_id);
  if (it != inbound_qos2_.end() && *it == packet_id) return false;
  // Ids mostly come in order: appended, then rotated into place when not.
  const size_t at = static_cast<size_t>(it - inbound_qos2_.begin());
  inbound_qos2_.push_back(packet_id);
  std::rotate(inbound_qos2_.begin() + static_cast<std::ptrdiff_t>(at), inbound_qos2_.end() - 1,
              inbound_qos2_.end());
  return true;
}

size_t Session::inbound_qos2_count() {
  return inbound_qos2_size_.load(std::memory_order_relaxed);
}

bool Session::remember_subscription(const std::string& filter, const SubscriptionOptions& options) {
  std::lock_guard lock(mutex_);
  if (!subscriptions_)
    subscriptions_ = std::make_unique<std::map<std::string, SubscriptionOptions>>();
  auto [it, inserted] = subscriptions_->insert_or_assign(filter, options);
  return inserted;
}

bool Session::forget_subscription(const std::string& filter) {
  std::lock_guard lock(mutex_);
  if (!subscriptions_ || subscriptions_->erase(filter) == 0) return false;
  if (subscriptions_->empty()) subscriptions_.reset();
  return true;
}

std::map<std::string, SubscriptionOptions> Session::subscriptions() {
  std::lock_guard lock(mutex_);
  return subscriptions_ ? *subscriptions_ : std::map<std::string, SubscriptionOptions>{};
}

namespace {

bool may_hand_over(const ShareKey& share, const std::set<std::string>* groups) {
  return share && (!groups || groups->count(*share) > 0);
}

}  // namespace

std::map<std::string, std::string> Session::shared_undelivered_groups() {
  std::lock_guard lock(mutex_);
  std::map<std::string, std::string> out;
  for (const Inflight& f : inflight_) {
    if (f.delivery.share && !f.released && f.delivery.qos == 1) {
      out.emplace(*f.delivery.share, f.delivery.message->topic);
    }
  }
  for (const Delivery& d : queue_) {
    if (d.share) out.emplace(*d.share, d.message->topic);
  }
  return out;
}

Session::Exported Session::export_and_end(Clock::time_point now) {
  Exported out;
  uint64_t spilled_from = 0;
  bool spilled = false;
  {
    std::lock_guard lock(mutex_);
    for (const Inflight& f : inflight_) {
      out.messages.push_back(record_locked(
          f.delivery, f.released ? store::QueueState::Released : store::QueueState::Sent,
          f.packet_id, now));
    }
    for (const Delivery& d : queue_)
      out.messages.push_back(record_locked(d, store::QueueState::Queued, 0, now));
    out.inbound_qos2.assign(inbound_qos2_.begin(), inbound_qos2_.end());
    spilled = spilled_ > 0 && store_;
    spilled_from = spill_from_seq_;
    inflight_.clear();
    queue_.clear();
    queue_bytes_ = 0;
    spilled_ = 0;
    inbound_qos2_.clear();
    inbound_qos2_size_.store(0, std::memory_order_relaxed);
    ended_ = true;
  }
  if (spilled) {
    // Detached and out of the subscription tree: nothing is added behind these meanwhile.
    store_->scan(
        store::client_prefix(store::Kind::Queued, client_id_),
        [&](std::string_view key, std::string_view value) {
          std::string client;
          uint64_t seq = 0;
          store::QueuedRecord r;
          if (store::parse_queued_key(key, client, seq) && store::decode(value, r) &&
              seq >= spilled_from && r.state == store::QueueState::Queued) {
            out.messages.push_back(std::move(r));
          }
          return true;
        },
        store::queued_key(client_id_, spilled_from));
  }
  return out;
}

size_t Session::adopt(std::vector<store::QueuedRecord>&& messages,
                      const std::vector<uint16_t>& inbound, bool fresh, Clock::time_point now,
                      store::Batch* batch) {
  std::lock_guard lock(mutex_);
  size_t expired = 0;
  const bool persistent = persistent_locked() && batch != nullptr;
  for (store::QueuedRecord& r : messages) {
    if (!fresh) {
      // The client started afresh here: packet ids of the old connection mean nothing to it.
      if (r.state == store::QueueState::Released) continue;  // it has this one
      r.state = store::QueueState::Queued;
      r.packet_id = 0;
    }
    Delivery d;
    d.qos = r.qos;
    d.retain = r.retain;
    d.subscription_ids = r.subscription_ids;
    if (!r.share_group.empty()) d.share = std::make_shared<const std::string>(r.share_group);
    const store::QueueState state = r.state;
    const uint16_t packet_id = r.packet_id;
    std::string encoded = persistent ? store::encode(r) : std::string();
    d.message = from_record(std::move(r.message), now);
    if (!d.message) {
      ++expired;
      continue;
    }
    if (persistent) {
      d.store_seq = next_seq_++;
      batch->put(store::queued_key(client_id_, d.store_seq), std::move(encoded));
    }
    if (state == store::QueueState::Queued) {
      queue_bytes_ += delivery_bytes(d);
      queue_.push_back(std::move(d));
    } else {
      last_packet_id_ = std::max(last_packet_id_, packet_id);
      inflight_.push_back(Inflight{std::move(d), packet_id, state == store::QueueState::Released});
    }
  }
  for (uint16_t id : inbound) {
    if (insert_inbound_qos2_locked(id) && persistent) {
      batch->put(store::inbound_key(client_id_, id), "");
    }
  }
  inbound_qos2_size_.store(static_cast<uint32_t>(inbound_qos2_.size()), std::memory_order_relaxed);
  if (persistent) ever_persistent_ = true;
  return expired;
}

size_t Session::end_and_count_undelivered() {
  std::lock_guard lock(mutex_);
  if (ended_) return 0;
  ended_ = true;
  size_t n = queue_.size() + spilled_;
  for (const Inflight& f : inflight_) {
    if (!f.released) ++n;  // released: PUBREC came, the client has it
  }
  return n;
}

std::vector<Delivery> Session::take_shared_undelivered(const std::set<std::string>* groups) {
  std::lock_guard lock(mutex_);
  std::vector<Delivery> out;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (may_hand_over(it->delivery.share, groups) && !it->released && it->delivery.qos == 1) {
      erase_record_locked(it->delivery);
      it->delivery.store_seq = 0;
      out.push_back(std::move(it->delivery));
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (may_hand_over(it->share, groups)) {
      queue_bytes_ -= std::min<uint64_t>(queue_bytes_, delivery_bytes(*it));
      erase_record_locked(*it);
      it->store_seq = 0;
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Session::set_expiry_interval(uint32_t seconds) {
  std::lock_guard lock(mutex_);
  expiry_interval_ = seconds;
  if (seconds > 0) ever_persistent_ = true;
}

uint32_t Session::expiry_interval() {
  std::lock_guard lock(mutex_);
  return expiry_interval_;
}

void Session::mark_disconnected(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  disconnected_at_ = now;
}

bool Session::expired(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (link_) return false;
  if (expiry_interval_ == 0xFFFFFFFF) return false;
  return now - disconnected_at_ >= std::chrono::seconds(expiry_interval_);
}

void Session::add_waiter(Attachment publisher) {
  std::lock_guard lock(mutex_);
  if (!link_ || queue_.size() * 4 <= limits_->max_queued_messages) {
    // Drained meanwhile: resume at once.
    connections_.resume_reading(publisher);
    return;
  }
  if (std::find(waiters_.begin(), waiters_.end(), publisher) == waiters_.end()) {
    waiters_.push_back(publisher);
  }
}

size_t Session::queued_count() {
  std::lock_guard lock(mutex_);
  return queue_.size() + spilled_;
}

size_t Session::inflight_count() {
  std::lock_guard lock(mutex_);
  return inflight_.size();
}

// --- Views (HTTP API) -------------------------------------------------------------------------

void Session::set_read_acl(std::shared_ptr<const auth::ClientAcl> acl) {
  std::lock_guard lock(mutex_);
  read_acl_ = std::move(acl);
  drop_unreadable_locked();
}

void Session::drop_unreadable_locked() {
  if (!read_acl_) return;
  // Messages queued while no rules or other rules were in force (an offline session restored
  // after a restart, or before a re-authentication) leave the queue if the client may not
  // read them; spilled ones are checked as they are read back (refill).
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [this](const Delivery& d) { return drop_if_unreadable_locked(d); }),
               queue_.end());
}

bool Session::drop_if_unreadable_locked(const Delivery& d) {
  if (may_read_locked(d.message->topic)) return false;
  metrics::add(metrics::Counter::AclDeniedRead);
  queue_bytes_ -= std::min<uint64_t>(queue_bytes_, delivery_bytes(d));
  erase_record_locked(d);
  return true;
}

void Session::set_peer(core::PeerAddress peer) {
  std::lock_guard lock(mutex_);
  peer_ = peer;
}

SessionInfo Session::info() {
  std::lock_guard lock(mutex_);
  SessionInfo i;
  i.client_id = client_id_;
  i.connected = static_cast<bool>(link_);
  i.version = version_locked();
  i.peer = peer_.to_string();
  i.subscriptions = subscriptions_ ? subscriptions_->size() : 0;
  i.queued = queue_.size() + spilled_;
  i.inflight = inflight_.size();
  i.expiry_interval = expiry_interval_;
  return i;
}

Attachment Session::link() const {
  std::lock_guard lock(mutex_);
  return link_;
}

void Session::set_store(store::Store* store) {
  std::lock_guard lock(mutex_);
  store_ = store;
}

bool Session::persistent() {
  std::lock_guard lock(mutex_);
  return persistent_locked();
}

bool Session::has_records() {
  std::lock_guard lock(mutex_);
  return store_ && ever_persistent_;
}

store::QueuedRecord Session::record_locked(const Delivery& d, store::QueueState state,
                                           uint16_t packet_id, Clock::time_point now) const {
  store::QueuedRecord r;
  r.message = to_record(*d.message, now);
  r.qos = d.qos;
  r.retain = d.retain;
  r.state = state;
  r.packet_id = packet_id;
  r.subscription_ids = d.subscription_ids;
  if (d.share) r.share_group = *d.share;
  return r;
}

uint64_t Session::write_record_locked(const Delivery& d, store::QueueState state,
                                      uint16_t packet_id, Clock::time_point now) {
  store::Batch batch;
  batch.put(store::queued_key(client_id_, d.store_seq),
            store::encode(record_locked(d, state, packet_id, now)));
  return store_->write(std::move(batch));
}

void Session::erase_record_locked(const Delivery& d) {
  if (!d.store_seq || !store_) return;
  store::Batch batch;
  batch.del(store::queued_key(client_id_, d.store_seq));
  store_->write_background(std::move(batch));
}

void Session::restore_spilled(uint64_t seq, size_t bytes) {
  std::lock_guard lock(mutex_);
  next_seq_ = std::max(next_seq_, seq + 1);
  if (spilled_ == 0) spill_from_seq_ = seq;
  ++spilled_;
  queue_bytes_ += bytes;
}

size_t Session::resident_queued() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Session::set_limits(const DeliveryLimits& limits) {
  std::lock_guard lock(mutex_);
  limits_ = DeliveryLimits::shared(limits);
}

void Session::restore_queued(uint64_t seq, Delivery&& d, store::QueueState state,
                             uint16_t packet_id) {
  std::lock_guard lock(mutex_);
  d.store_seq = seq;
  next_seq_ = std::max(next_seq_, seq + 1);
  if (state == store::QueueState::Queued) {
    queue_bytes_ += delivery_bytes(d);
    queue_.push_back(std::move(d));
    return;
  }
  last_packet_id_ = std::max(last_packet_id_, packet_id);
  inflight_.push_back(Inflight{std::move(d), packet_id, state == store::QueueState::Released});
}

}  // namespace starling::broker
