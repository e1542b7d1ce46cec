#include "hooks/webhooks.h"

#include <spdlog/spdlog.h>

#include "core/base64.h"
#include "mqtt/topic.h"

namespace starling::hooks {

using broker::Event;
using broker::EventKind;

namespace {

// Events are written by hand rather than through a JSON object: at a hundred thousand
// deliveries a second the webhook's thread is a CPU the broker's workers share.
class JsonObject {
 public:
  explicit JsonObject(std::string& out) : out_(out) { out_ += '{'; }
  ~JsonObject() { out_ += '}'; }

  void text(const char* key, std::string_view value) {
    name(key);
    quoted(value);
  }
  void number(const char* key, int64_t value) {
    name(key);
    out_ += std::to_string(value);
  }
  void boolean(const char* key, bool value) {
    name(key);
    out_ += value ? "true" : "false";
  }

 private:
  void name(const char* key) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  // MQTT strings are valid UTF-8 (the codec checks); anything else has its bytes above 0x7F
  // replaced, so the document stays valid JSON.
  void quoted(std::string_view s) {
    const bool utf8 = mqtt::valid_utf8(s);
    out_ += '"';
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (u < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        out_ += "\\u00";
        out_ += kHex[u >> 4];
        out_ += kHex[u & 15];
      } else if (u >= 0x80 && !utf8) {
        out_ += "\\ufffd";
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace

void append_event_json(std::string& out, const Event& e, uint64_t seq, const std::string& node) {
  JsonObject j(out);
  j.text("event", broker::event_name(e.kind));
  j.number("seq", static_cast<int64_t>(seq));
  j.number("timestamp", e.timestamp_ms);
  j.text("node", node);
  j.text("clientid", e.client_id);
  switch (e.kind) {
    case EventKind::ClientConnected:
      j.text("username", e.username);
      j.text("peerhost", e.peerhost);
      j.number("proto_ver", e.proto_ver);
      j.number("keepalive", e.keepalive);
      j.boolean("clean_start", e.clean_start);
      break;
    case EventKind::ClientDisconnected:
      j.text("username", e.username);
      j.text("peerhost", e.peerhost);
      j.text("reason", e.reason);
      if (e.reason_code >= 0) j.number("reason_code", e.reason_code);
      break;
    case EventKind::SessionCreated:
      break;
    case EventKind::SessionTerminated:
      j.text("reason", e.reason);
      break;
    case EventKind::SessionSubscribed:
      j.text("username", e.username);
      j.text("topic", e.topic);
      j.number("qos", e.qos);
      break;
    case EventKind::SessionUnsubscribed:
      j.text("username", e.username);
      j.text("topic", e.topic);
      break;
    case EventKind::MessageDelivered:
    case EventKind::MessageDropped:
      if (!e.message) break;
      j.text("from_clientid", e.message->origin_client_id);
      j.text("from_username", e.message->origin_username);
      j.text("topic", e.message->topic);
      j.number("qos", e.qos);
      j.boolean("retain", e.retain);
      j.text("payload", core::base64_encode(e.message->payload));
      j.text("payload_encoding", "base64");
      if (e.kind == EventKind::MessageDropped) j.text("reason", e.reason);
      break;
    case EventKind::kCount:
      break;
  }
}

// --- One webhook --------------------------------------------------------------------------------

Webhook::Webhook(const config::WebhookSettings& settings, std::string node)
    : settings_(settings),
      node_(std::move(node)),
      client_(http_client::ClientOptions{.thread_name = "starling-hook",
                                         .max_connections = settings.pool_size,
                                         .max_pending = 4,
                                         .ca_file = settings.ca_file}) {
  for (const std::string& name : settings_.events) {
    for (unsigned k = 0; k < static_cast<unsigned>(EventKind::kCount); ++k) {
      if (name == broker::event_name(static_cast<EventKind>(k))) kinds_ |= 1u << k;
    }
  }
  for (const std::string& f : settings_.topics)
    filters_.emplace_back(f);
}

Webhook::~Webhook() = default;

bool Webhook::has_room() const {
  return size_.load(std::memory_order_relaxed) < settings_.queue_max;
}

void Webhook::count_drop() const {
  dropped_.fetch_add(1, std::memory_order_relaxed);
}

bool Webhook::wants_topic(std::string_view topic) const {
  for (const auth::TopicFilter& f : filters_) {
    if (f.matches(topic)) return true;
  }
  return false;
}

void Webhook::push(Event event) {
  bool schedule = false;
  bool now = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= settings_.queue_max) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (queue_.empty()) oldest_at_ = std::chrono::steady_clock::now();
    queue_.push_back(std::move(event));
    size_.store(queue_.size(), std::memory_order_relaxed);
    if (in_flight_ == 0 && backoff_ms_ == 0) {
      if (!pump_due_) {
        pump_due_ = true;
        schedule = true;
        now = settings_.batch_delay_ms == 0 || queue_.size() >= settings_.batch_max;
      } else if (queue_.size() == settings_.batch_max) {
        schedule = now = true;  // a full batch need not wait for the delay
      }
    }
  }
  if (schedule) {
    client_.after(std::chrono::milliseconds(now ? 0 : settings_.batch_delay_ms),
                  [this] { pump(); });
  }
}

void Webhook::pump() {
  std::vector<const Event*> batch;
  uint64_t first_seq = 0;
  {
    std::lock_guard lock(mutex_);
    pump_due_ = false;
    if (in_flight_ > 0 || queue_.empty()) return;
    const auto waited = std::chrono::steady_clock::now() - oldest_at_;
    const auto delay = std::chrono::milliseconds(settings_.batch_delay_ms);
    if (backoff_ms_ == 0 && queue_.size() < settings_.batch_max && waited < delay) {
      pump_due_ = true;
      client_.after(std::chrono::duration_cast<std::chrono::milliseconds>(delay - waited),
                    [this] { pump(); });
      return;
    }
    in_flight_ = std::min<size_t>(queue_.size(), settings_.batch_max);
    // Only this thread removes events, from the front: references to the first ones stay
    // valid while other threads append (std::deque::push_back keeps references).
    for (size_t i = 0; i < in_flight_; ++i)
      batch.push_back(&queue_[i]);
    first_seq = front_seq_;
  }
  std::string body = "[";
  body.reserve(batch.size() * 256);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i > 0) body += ',';
    append_event_json(body, *batch[i], first_seq + i, node_);
  }
  body += ']';
  http_client::Request r;
  r.url = settings_.url;
  r.body = std::move(body);
  r.headers = settings_.headers;
  r.timeout_ms = settings_.timeout_ms;
  const bool taken = client_.submit(std::move(r), [this](http_client::Response&& response) {
    if (!response.answered()) {
      if (response.error != "stopped") sent(false, response.error);
    } else if (response.status < 200 || response.status > 299) {
      sent(false, "HTTP status " + std::to_string(response.status));
    } else {
      sent(true, {});
    }
  });
  if (!taken) sent(false, "request not taken");
}

void Webhook::sent(bool ok, const std::string& why) {
  std::chrono::milliseconds next{0};
  {
    std::lock_guard lock(mutex_);
    if (ok) {
      posts_ok_.fetch_add(1, std::memory_order_relaxed);
      delivered_.fetch_add(in_flight_, std::memory_order_relaxed);
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_));
      size_.store(queue_.size(), std::memory_order_relaxed);
      front_seq_ += in_flight_;
      in_flight_ = 0;
      if (backoff_ms_ != 0)
        spdlog::info("webhook {}: {} reachable again", settings_.name, settings_.url);
      backoff_ms_ = 0;
      if (queue_.empty()) return;
      // Whatever came meanwhile goes at once when a batch is full, else after the delay.
      oldest_at_ = std::chrono::steady_clock::now();
      if (queue_.size() < settings_.batch_max) {
        next = std::chrono::milliseconds(settings_.batch_delay_ms);
      }
    } else {
      posts_failed_.fetch_add(1, std::memory_order_relaxed);
      in_flight_ = 0;
      if (backoff_ms_ == 0) {
        spdlog::warn("webhook {}: POST to {} failed ({}); retrying with backoff, {} events wait",
                     settings_.name, settings_.url, why, queue_.size());
      }
      backoff_ms_ = backoff_ms_ == 0 ? settings_.retry_min_ms
                                     : std::min(backoff_ms_ * 2, settings_.retry_max_ms);
      next = std::chrono::milliseconds(backoff_ms_);
    }
    pump_due_ = true;
  }
  client_.after(next, [this] { pump(); });
}

Webhook::Counts Webhook::counts() const {
  Counts c;
  {
    std::lock_guard lock(mutex_);
    c.queued = queue_.size();
  }
  c.delivered = delivered_.load(std::memory_order_relaxed);
  c.dropped = dropped_.load(std::memory_order_relaxed);
  c.posts_ok = posts_ok_.load(std::memory_order_relaxed);
  c.posts_failed = posts_failed_.load(std::memory_order_relaxed);
  return c;
}

// --- All of them --------------------------------------------------------------------------------

Webhooks::Webhooks(const std::vector<config::WebhookSettings>& settings, const std::string& node) {
  for (const config::WebhookSettings& s : settings)
    hooks_.push_back(std::make_unique<Webhook>(s, node));
}

uint32_t Webhooks::kinds() const {
  uint32_t kinds = 0;
  for (const auto& h : hooks_)
    kinds |= h->kinds();
  return kinds;
}

namespace {
bool filtered_by_topic(EventKind kind) {
  return kind == EventKind::MessageDelivered || kind == EventKind::MessageDropped ||
         kind == EventKind::SessionSubscribed || kind == EventKind::SessionUnsubscribed;
}
}  // namespace

bool Webhooks::wants_topic(EventKind kind, std::string_view topic) const {
  // An event every interested webhook has no room for is counted dropped here, and not made;
  // otherwise push() counts the drops of the full ones.
  std::vector<const Webhook*> full;
  for (const auto& h : hooks_) {
    if (!h->wants(kind) || (filtered_by_topic(kind) && !h->wants_topic(topic))) continue;
    if (h->has_room()) return true;
    full.push_back(h.get());
  }
  for (const Webhook* h : full)
    h->count_drop();
  return false;
}

void Webhooks::emit(Event&& event) {
  const std::string_view topic =
      event.message ? std::string_view(event.message->topic) : std::string_view(event.topic);
  Webhook* last = nullptr;
  for (const auto& h : hooks_) {
    if (!h->wants(event.kind)) continue;
    if (filtered_by_topic(event.kind) && !h->wants_topic(topic)) continue;
    if (last != nullptr) last->push(event);  // a copy for all but the last
    last = h.get();
  }
  if (last != nullptr) last->push(std::move(event));
}

void Webhooks::render_metrics(std::string& out) const {
  if (hooks_.empty()) return;
  std::vector<Webhook::Counts> counts;
  for (const auto& h : hooks_)
    counts.push_back(h->counts());
  auto family = [&](const char* name, const char* type, const char* help, const char* result,
                    auto value) {
    if (help != nullptr) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    }
    for (size_t i = 0; i < hooks_.size(); ++i) {
      out += std::string(name) + "{webhook=\"" + hooks_[i]->settings().name + "\"";
      if (result != nullptr) out += std::string(",result=\"") + result + "\"";
      out += "} " + std::to_string(value(counts[i])) + "\n";
    }
  };
  using C = Webhook::Counts;
  family("starling_webhook_events_total", "counter",
         "Events POSTed (delivered), or dropped on a full queue, by webhook", "delivered",
         [](const C& c) { return c.delivered; });
  family("starling_webhook_events_total", "counter", nullptr, "dropped",
         [](const C& c) { return c.dropped; });
  family("starling_webhook_posts_total", "counter",
         "POSTs by webhook and result (a failed one is sent again after a backoff)", "ok",
         [](const C& c) { return c.posts_ok; });
  family("starling_webhook_posts_total", "counter", nullptr, "failed",
         [](const C& c) { return c.posts_failed; });
  family("starling_webhook_queued", "gauge", "Events waiting to be POSTed, by webhook", nullptr,
         [](const C& c) { return c.queued; });
}

}  // namespace starling::hooks
