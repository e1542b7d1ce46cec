// [[webhooks]]: broker events POSTed as JSON arrays to the user's URLs (docs/webhooks.md).
//
// Each webhook has its own queue, bounded by queue_max: an event that finds it full is dropped
// and counted (starling_webhook_events_total{result="dropped"}), never waited for, so the
// broker's threads only ever append to a vector under a short lock. Its own HTTP thread takes
// up to batch_max events (waiting batch_delay_ms for a batch to fill), POSTs them, and on
// failure (no answer, a status other than 2xx) POSTs the same batch again after a backoff
// (retry_min_ms doubling to retry_max_ms): one batch in flight, so events arrive in the order
// they were queued. Every event has a "seq" (per webhook, from 1) for the receiver to spot a
// batch it already took (a POST that succeeded but whose answer was lost is sent again).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/topic_match.h"
#include "broker/events.h"
#include "config/webhook_settings.h"
#include "http/client/async_client.h"

namespace starling::hooks {

// The JSON object of one event (EMQX's field names where EMQX has the event), appended.
void append_event_json(std::string& out, const broker::Event& event, uint64_t seq,
                       const std::string& node);

class Webhook {
 public:
  Webhook(const config::WebhookSettings& settings, std::string node);
  ~Webhook();

  const config::WebhookSettings& settings() const { return settings_; }
  bool wants(broker::EventKind kind) const { return (kinds_ >> static_cast<unsigned>(kind)) & 1u; }
  bool wants_topic(std::string_view topic) const;
  uint32_t kinds() const { return kinds_; }
  // Any thread: queued, or dropped when the queue is full.
  void push(broker::Event event);
  // Any thread, before an event is made (no lock).
  bool has_room() const;
  void count_drop() const;
  struct Counts {
    uint64_t delivered = 0, dropped = 0, posts_ok = 0, posts_failed = 0, queued = 0;
  };
  Counts counts() const;

 private:
  void pump();  // on the HTTP thread: sends the next batch when one is due
  void sent(bool ok, const std::string& why);

  const config::WebhookSettings settings_;
  const std::string node_;
  uint32_t kinds_ = 0;
  std::vector<auth::TopicFilter> filters_;

  mutable std::mutex mutex_;
  std::deque<broker::Event> queue_;
  std::chrono::steady_clock::time_point oldest_at_;  // when the queue's front came
  uint64_t front_seq_ = 1;                           // seq of queue_.front()
  size_t in_flight_ = 0;     // events of the batch being POSTed (the queue's first ones)
  bool pump_due_ = false;    // a pump() is scheduled
  uint32_t backoff_ms_ = 0;  // 0: the last POST went through

  std::atomic<uint64_t> delivered_{0};
  mutable std::atomic<uint64_t> dropped_{0};
  std::atomic<size_t> size_{0};  // queue_.size(), readable without the lock
  std::atomic<uint64_t> posts_ok_{0};
  std::atomic<uint64_t> posts_failed_{0};
  http_client::AsyncClient client_;  // last: destroyed first
};

// All webhooks: the broker's event sink.
class Webhooks final : public broker::EventSink {
 public:
  Webhooks(const std::vector<config::WebhookSettings>& settings, const std::string& node);
  // The kinds any webhook wants (for broker::Events::install).
  uint32_t kinds() const;
  void emit(broker::Event&& event) override;
  bool wants_topic(broker::EventKind kind, std::string_view topic) const override;
  void render_metrics(std::string& out) const override;

 private:
  std::vector<std::unique_ptr<Webhook>> hooks_;
};

}  // namespace starling::hooks
