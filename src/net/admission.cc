#include "net/admission.h"

#include "metrics/counters.h"

namespace starling::net {

Admission::Verdict Admission::admit_socket(ListenerCount& listener, uint32_t listener_max,
                                           const config::Limits& limits) {
  // Counted first, undone on refusal: two accepts on two loops cannot both take the last place.
  uint32_t total = open_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (limits.max_connections != 0 && total > limits.max_connections) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    return Verdict::ServerFull;
  }
  uint32_t mine = listener.open.fetch_add(1, std::memory_order_relaxed) + 1;
  if (listener_max != 0 && mine > listener_max) {
    listener.open.fetch_sub(1, std::memory_order_relaxed);
    open_.fetch_sub(1, std::memory_order_relaxed);
    return Verdict::ListenerFull;
  }
  return Verdict::Admitted;
}

void Admission::release_socket(ListenerCount& listener) {
  listener.open.fetch_sub(1, std::memory_order_relaxed);
  open_.fetch_sub(1, std::memory_order_relaxed);
}

Admission::Verdict Admission::admit_address(const std::string& address,
                                            const config::Limits& limits, Clock::time_point now) {
  const uint32_t max_open = limits.max_connections_per_address;
  const uint32_t rate = limits.max_connection_rate_per_address;
  if (max_open == 0 && rate == 0) return Verdict::Admitted;  // nothing to track
  std::lock_guard lock(mutex_);
  if (now - last_prune_ > std::chrono::seconds(10) || addresses_.size() > 100000) {
    prune(now, limits);
  }
  PerAddress& a = addresses_[address];
  if (rate != 0 && !a.connects.available(rate, now)) return Verdict::AddressRate;
  if (max_open != 0 && a.open >= max_open) return Verdict::AddressFull;
  if (rate != 0) a.connects.take();
  ++a.open;
  return Verdict::Admitted;
}

void Admission::release_address(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = addresses_.find(address);
  if (it != addresses_.end() && it->second.open > 0) --it->second.open;
}

void Admission::prune(Clock::time_point now, const config::Limits& limits) {
  last_prune_ = now;
  const uint32_t rate = limits.max_connection_rate_per_address;
  for (auto it = addresses_.begin(); it != addresses_.end();) {
    const PerAddress& a = it->second;
    if (a.open == 0 && (rate == 0 || a.connects.full_at(rate, now))) {
      it = addresses_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t Admission::tracked_addresses() const {
  std::lock_guard lock(mutex_);
  return addresses_.size();
}

void Admission::count(Verdict verdict) {
  using metrics::Counter;
  metrics::add(Counter::ConnectionsRefused);
  switch (verdict) {
    case Verdict::ServerFull:
      metrics::add(Counter::LimitConnections);
      break;
    case Verdict::ListenerFull:
      metrics::add(Counter::LimitListenerConnections);
      break;
    case Verdict::AddressFull:
      metrics::add(Counter::LimitAddressConnections);
      break;
    case Verdict::AddressRate:
      metrics::add(Counter::LimitConnectionRate);
      break;
    case Verdict::Admitted:
      break;
  }
}

const char* Admission::describe(Verdict verdict) {
  switch (verdict) {
    case Verdict::ServerFull:
      return "limits.max_connections reached";
    case Verdict::ListenerFull:
      return "the listener's max_connections reached";
    case Verdict::AddressFull:
      return "limits.max_connections_per_address reached";
    case Verdict::AddressRate:
      return "limits.max_connection_rate_per_address exceeded";
    case Verdict::Admitted:
      break;
  }
  return "admitted";
}

}  // namespace starling::net
