// The Prometheus text exposition format (version 0.0.4) of every counter, gauge and histogram,
// names prefixed "starling_". The caller supplies the gauges that live in the broker, so this
// module keeps depending on nothing.
#pragma once

#include <cstdint>
#include <string>

namespace starling::metrics {

struct Gauges {
  int64_t clients_connected = 0;
  uint64_t sessions = 0;
  uint64_t subscriptions = 0;
  uint64_t retained_messages = 0;
  uint64_t queued_messages = 0;    // summed over sessions (resident and in the store)
  uint64_t inflight_messages = 0;  // QoS 1/2 sent and not yet acknowledged, summed
  uint64_t max_queue_depth = 0;    // the longest session queue
  uint64_t http_connections = 0;
  double uptime_seconds = 0;
  bool store_open = false;
  uint64_t store_commits = 0;
  uint64_t store_syncs = 0;
};

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_prometheus(const Gauges& gauges, const std::string& version);

}  // namespace starling::metrics
