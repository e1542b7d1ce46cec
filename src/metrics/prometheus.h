// The Prometheus text exposition format (version 0.0.4) of every counter, gauge and histogram,
// names prefixed "starling_". The caller supplies the gauges that live in the broker, so this
// module keeps depending on nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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

// Appends families and samples in the text format, names prefixed "starling_" (also used by
// modules with metrics of their own, such as the Kafka bridge).
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample: name{labels} value.
  void sample(std::string_view name, std::string_view labels, uint64_t value);
  void sample(std::string_view name, std::string_view labels, int64_t value);
  void sample(std::string_view name, std::string_view labels, double value);
  void counter(std::string_view name, std::string_view help, uint64_t value);  // adds _total
  void gauge(std::string_view name, std::string_view help, uint64_t value);

 private:
  void begin(std::string_view name, std::string_view labels);
  template <typename T>
  void number(T value);  // the value and the line's end
  std::string& out_;
};

// name="value", the value escaped as the format asks.
std::string label(std::string_view name, std::string_view value);

}  // namespace starling::metrics
