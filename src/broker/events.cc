#include "broker/events.h"

#include <chrono>

namespace starling::broker {

const char* event_name(EventKind kind) {
  switch (kind) {
    case EventKind::ClientConnected:
      return "client.connected";
    case EventKind::ClientDisconnected:
      return "client.disconnected";
    case EventKind::SessionCreated:
      return "session.created";
    case EventKind::SessionTerminated:
      return "session.terminated";
    case EventKind::SessionSubscribed:
      return "session.subscribed";
    case EventKind::SessionUnsubscribed:
      return "session.unsubscribed";
    case EventKind::MessageDelivered:
      return "message.delivered";
    case EventKind::MessageDropped:
      return "message.dropped";
    case EventKind::kCount:
      break;
  }
  return "unknown";
}

void Events::emit(Event&& event) {
  EventSink* sink = sink_.load(std::memory_order_acquire);
  if (sink == nullptr) return;
  event.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  sink->emit(std::move(event));
}

}  // namespace starling::broker
