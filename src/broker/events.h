// Broker events for the webhooks ([[webhooks]], src/hooks/webhooks): clients coming and going,
// sessions, subscriptions, deliveries and drops. The broker emits an event only when some sink
// wants its kind: the check is one relaxed load, so a broker without webhooks (or a webhook
// without message events) pays nothing on the publish path. A sink queues the event and
// returns; the HTTP work happens on its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "broker/message.h"

namespace starling::broker {

enum class EventKind : uint8_t {
  ClientConnected,
  ClientDisconnected,
  SessionCreated,
  SessionTerminated,
  SessionSubscribed,
  SessionUnsubscribed,
  MessageDelivered,
  MessageDropped,
  kCount
};

// The EMQX name of each kind ("client.connected", ...), as in [[webhooks]] events.
const char* event_name(EventKind kind);

// One event; fields that do not apply to its kind stay empty.
struct Event {
  EventKind kind = EventKind::ClientConnected;
  int64_t timestamp_ms = 0;  // wall clock
  std::string client_id;     // message.*: the receiver
  std::string username;
  std::string peerhost;
  std::string reason;        // client.disconnected, message.dropped, session.terminated
  int reason_code = -1;      // client.disconnected: the MQTT reason code, when there is one
  uint8_t proto_ver = 0;     // client.connected
  uint16_t keepalive = 0;    // client.connected
  bool clean_start = false;  // client.connected
  std::string topic;         // session.(un)subscribed: the filter
  uint8_t qos = 0;           // session.subscribed; message.*: the delivery's
  bool retain = false;
  // message.*: the message itself (topic, payload, publisher), shared, not copied: it is
  // immutable once routed, and the webhook's thread reads it when it makes the JSON.
  MessagePtr message;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Any thread; must not block.
  virtual void emit(Event&& event) = 0;
  // message.* and session.(un)subscribed events only for topics some webhook filters on and
  // has room for (an event no such webhook has room for is counted dropped and not made).
  virtual bool wants_topic(EventKind kind, std::string_view topic) const = 0;
  // Its Prometheus families, appended to /metrics.
  virtual void render_metrics(std::string& out) const = 0;
};

// The process's sink (set once at start, before the listeners open) and the kinds it wants.
class Events {
 public:
  static void install(EventSink* sink, uint32_t kinds_mask) {
    sink_.store(sink, std::memory_order_release);
    mask_.store(sink ? kinds_mask : 0, std::memory_order_release);
  }
  static bool wanted(EventKind kind) {
    return (mask_.load(std::memory_order_relaxed) >> static_cast<unsigned>(kind)) & 1u;
  }
  // Call only when wanted(kind).
  static void emit(Event&& event);
  static const EventSink* sink() { return sink_.load(std::memory_order_acquire); }
  static bool wants_topic(EventKind kind, std::string_view topic) {
    EventSink* sink = sink_.load(std::memory_order_acquire);
    return sink != nullptr && sink->wants_topic(kind, topic);
  }

 private:
  static inline std::atomic<EventSink*> sink_{nullptr};
  static inline std::atomic<uint32_t> mask_{0};
};

}  // namespace starling::broker
