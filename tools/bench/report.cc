#include "report.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <string>
#include <string_view>

namespace starling::bench {

namespace {

const char* version_name(mqtt::Version v) {
  switch (v) {
    case mqtt::Version::V31:
      return "3.1";
    case mqtt::Version::V311:
      return "3.1.1";
    case mqtt::Version::V5:
      return "5";
  }
  return "?";
}

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}

// A duration in the unit that keeps it readable: 850 us, 12.3 ms, 1.52 s.
std::string human_ns(double ns) {
  char buf[32];
  if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.0f us", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.1f ms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", ns / 1e9);
  }
  return buf;
}

std::string latency_line(const Histogram& h) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%" PRIu64 " samples)",
                human_ns(h.quantile(0.50)).c_str(), human_ns(h.quantile(0.90)).c_str(),
                human_ns(h.quantile(0.99)).c_str(), human_ns(h.quantile(0.999)).c_str(),
                human_ns(h.max()).c_str(), h.count());
  return buf;
}

// Minimal JSON writer: objects, arrays, numbers, strings, bools. Enough for one report, and
// keeps the tool free of a JSON dependency (nlohmann-json is not installed here).
class Json {
 public:
  explicit Json(std::FILE* out) : out_(out) {}
  void begin_object(const char* key = nullptr) { open(key, '{'); }
  void end_object() { close('}'); }
  void begin_array(const char* key = nullptr) { open(key, '['); }
  void end_array() { close(']'); }
  void field(const char* key, const std::string& v) {
    prefix(key);
    string(v);
  }
  void field(const char* key, const char* v) { field(key, std::string(v)); }
  void field(const char* key, bool v) {
    prefix(key);
    std::fputs(v ? "true" : "false", out_);
  }
  void field(const char* key, double v) {
    prefix(key);
    if (std::isfinite(v)) {
      std::fprintf(out_, "%.3f", v);
    } else {
      std::fputs("null", out_);
    }
  }
  void field(const char* key, uint64_t v) {
    prefix(key);
    std::fprintf(out_, "%" PRIu64, v);
  }
  void field(const char* key, int64_t v) {
    prefix(key);
    std::fprintf(out_, "%" PRId64, v);
  }
  void field(const char* key, int v) { field(key, static_cast<int64_t>(v)); }
  void field(const char* key, unsigned v) { field(key, static_cast<uint64_t>(v)); }
  void value(const std::string& v) {
    prefix(nullptr);
    string(v);
  }

 private:
  void open(const char* key, char c) {
    prefix(key);
    std::fputc(c, out_);
    first_ = true;
  }
  void close(char c) {
    std::fputc(c, out_);
    first_ = false;
  }
  void prefix(const char* key) {
    if (!first_) std::fputc(',', out_);
    first_ = false;
    if (key != nullptr) {
      string(key);
      std::fputc(':', out_);
    }
  }
  void string(std::string_view s) {
    std::fputc('"', out_);
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        std::fputc('\\', out_);
        std::fputc(c, out_);
      } else if (c < 0x20) {
        std::fprintf(out_, "\\u%04x", c);
      } else {
        std::fputc(c, out_);
      }
    }
    std::fputc('"', out_);
  }

  std::FILE* out_;
  bool first_ = true;
};

}  // namespace

void print_text(const Report& r, std::FILE* out) {
  if (!r.started && r.totals.connected == 0) {
    // Nothing was measured: the error is all there is to say.
    std::fprintf(stderr, "starling-bench: error: %s\n", r.error.c_str());
    return;
  }
  const CommonOptions& o = r.options;
  const ThreadStats& t = r.totals;
  std::fprintf(out, "starling-bench %s against %s", r.scenario.c_str(), r.target.c_str());
  if (!o.preset.empty()) std::fprintf(out, " (preset %s)", o.preset.c_str());
  std::fprintf(out, ": ");
  for (const auto& [key, value] : r.params)
    std::fprintf(out, "%s %" PRId64 ", ", key.c_str(), value);
  std::fprintf(out, "QoS %u", o.qos);
  if (o.sub_qos != o.qos) std::fprintf(out, " (subscriptions QoS %u)", o.sub_qos);
  std::fprintf(out, ", %u B payload, MQTT %s", o.payload, version_name(o.version));
  if (o.tls) std::fprintf(out, " over %s", t.tls.empty() ? "TLS" : t.tls.c_str());
  std::fprintf(out, ", %u threads, %zu clients\n", r.threads, r.clients);
  std::fprintf(out, "window %.1f s (warmup %.1f s, drain up to %.1f s), ", o.duration_s, o.warmup_s,
               o.drain_s);
  if (!r.schedule.empty()) {
    std::fprintf(out, "%s", r.schedule.c_str());
  } else if (o.rate > 0) {
    std::fprintf(out, "rate %" PRIu64 " msg/s per publisher", o.rate);
  } else {
    std::fprintf(out, "unlimited rate with an in-flight window");
  }
  if (o.count > 0) std::fprintf(out, ", %" PRIu64 " messages per publisher", o.count);
  std::fprintf(out, "\n");
  if (r.ok && r.started && o.count > 0 && r.window_s + 0.01 < o.duration_s) {
    std::fprintf(out, "(the window ended after %.2f s: every message had arrived)\n", r.window_s);
  }
  if (!r.ok) {
    std::fprintf(out, "\nERROR: %s\n", r.error.c_str());
    if (r.started && r.window_s < o.duration_s) {
      std::fprintf(out, "(window cut short at %.2f s)\n", r.window_s);
    }
  }
  std::fprintf(out, "\n");
  if (t.connected > 0) {
    std::fprintf(
        out, "  connect       %12" PRIu64 " clients ready in %.2f s (%.0f/s); CONNACK %s\n",
        t.connected, r.connect_s, r.connects_per_s(), latency_line(t.connect_latency).c_str());
  }
  if (!r.started) return;
  const bool traffic = t.sent_total > 0 || t.received_total > 0 || r.expected > 0;
  if (traffic) {
    std::fprintf(out, "  sent          %12" PRIu64 "  %12.0f msg/s   (%" PRIu64 " in total)\n",
                 t.sent_window, r.sent_per_s(), t.sent_total);
    std::fprintf(out,
                 "  expected      %12" PRIu64 "                 (%" PRIu64
                 " in total: sent x matching receivers)\n",
                 r.expected_window, r.expected);
    std::fprintf(out, "  received      %12" PRIu64 "  %12.0f msg/s   (%" PRIu64 " in total)\n",
                 t.received_window, r.received_per_s(), t.received_total);
    std::fprintf(out, "  lost          %12" PRIu64 "%s\n", r.lost,
                 r.lost > 0 ? "   LOSS (expected in total - distinct received)" : "");
    std::fprintf(out, "  duplicates    %12" PRIu64 "\n", t.duplicates);
    std::fprintf(out, "  out of order  %12" PRIu64 "\n", t.out_of_order);
    if (t.window_stalls > 0) {
      std::fprintf(out, "  window stalls %12" PRIu64 "   (no progress for %.1f s)\n",
                   t.window_stalls, o.stall_timeout_s);
    }
    if (t.misrouted > 0) std::fprintf(out, "  misrouted     %12" PRIu64 "\n", t.misrouted);
    if (t.bad_payload > 0) std::fprintf(out, "  bad payload   %12" PRIu64 "\n", t.bad_payload);
    if (t.rejected > 0) std::fprintf(out, "  rejected      %12" PRIu64 "\n", t.rejected);
    if (t.unacked > 0) {
      std::fprintf(out,
                   "  unacked       %12" PRIu64
                   "   (QoS 1/2 publishes the broker never "
                   "acknowledged)\n",
                   t.unacked);
    }
    if (r.publishers.size() > 1) {
      // The publishers that fared worst, so uneven service shows.
      uint64_t min_sent = UINT64_MAX, max_sent = 0;
      size_t with_loss = 0, with_dups = 0;
      const PublisherSummary* worst = nullptr;
      for (const PublisherSummary& p : r.publishers) {
        min_sent = std::min(min_sent, p.sent);
        max_sent = std::max(max_sent, p.sent);
        with_loss += p.lost > 0 ? 1 : 0;
        with_dups += p.duplicates > 0 ? 1 : 0;
        if (p.lost > 0 && (worst == nullptr || p.lost > worst->lost)) worst = &p;
      }
      std::fprintf(out,
                   "  per publisher %12zu publishers, sent %" PRIu64 "..%" PRIu64
                   " each; %zu with loss, %zu with duplicates",
                   r.publishers.size(), min_sent, max_sent, with_loss, with_dups);
      if (worst != nullptr) {
        std::fprintf(out, " (worst: #%u lost %" PRIu64 " of %" PRIu64 ")", worst->index,
                     worst->lost, worst->expected);
      }
      std::fprintf(out, "\n");
    }
  }
  const Histogram& h = t.latency;
  if (r.scheduled()) {
    // Rate mode: from send hides the time a message waited for its turn to go out (the broker
    // holding the publisher back); from schedule counts it.
    std::fprintf(out, "  latency (from send)      %s\n                %s (mean %s)\n",
                 r.latency_label.c_str(), latency_line(h).c_str(), human_ns(h.mean()).c_str());
    const Histogram& hs = t.latency_from_schedule;
    std::fprintf(out, "  latency (from schedule)  %s\n                %s (mean %s)\n",
                 kScheduleLatencyLabel, latency_line(hs).c_str(), human_ns(hs.mean()).c_str());
    if (t.behind_schedule > 0) {
      std::fprintf(out,
                   "  behind schedule %10" PRIu64
                   "   (due by the end of the window, never sent: in neither latency)\n",
                   t.behind_schedule);
    }
  } else if (h.count() > 0) {
    std::fprintf(out, "  latency       %s\n                %s (mean %s)\n", r.latency_label.c_str(),
                 latency_line(h).c_str(), human_ns(h.mean()).c_str());
  }
  for (const ScenarioResult& res : r.results) {
    const bool whole = std::floor(res.value) == res.value;
    std::fprintf(out, whole ? "  %-13s %12.0f %s  (%s)\n" : "  %-13s %12.3f %s  (%s)\n",
                 res.key.c_str(), res.value, res.unit.c_str(), res.label.c_str());
  }
  std::fprintf(out, "  bench CPU    ");
  for (const ThreadReport& tr : r.thread_reports) {
    std::fprintf(out, " #%d %.0f%% (sys %.0f%%, waiting %.0f%%)%s", tr.index, tr.cpu_percent(),
                 tr.wall_s > 0 ? tr.sys_s / tr.wall_s * 100 : 0.0,
                 tr.wall_s > 0 ? tr.wait_s / tr.wall_s * 100 : 0.0,
                 tr.saturated() ? " SATURATED" : (tr.starved() ? " STARVED" : ""));
  }
  std::fprintf(out, "\n");
  if (r.broker.pid != 0) {
    std::fprintf(out,
                 "  broker pid %d  CPU avg %.0f%% (max %.0f%%), waiting for CPU %.0f%%, max RSS "
                 "%.1f MiB%s\n",
                 r.broker.pid, r.broker.cpu_avg_percent, r.broker.cpu_max_percent,
                 r.broker.wait_percent, r.broker.rss_max_kb / 1024.0,
                 r.broker.exited ? "  EXITED DURING RUN" : "");
    if (r.memory_per_connection) {
      std::fprintf(out,
                   "  broker memory RSS %.1f MiB before connecting, %.1f MiB holding %" PRIu64
                   " connections: %.1f KiB per connection\n",
                   r.broker.rss_baseline_kb / 1024.0, r.broker.rss_last_kb / 1024.0, t.connected,
                   r.broker.bytes_per_connection / 1024.0);
    }
  }
  if (r.machine_busy_cores > 0) {
    std::fprintf(out, "  machine      %.2f of %u cores busy, %.2f of them outside the bench%s\n",
                 r.machine_busy_cores, r.cores, r.other_cores,
                 r.broker.pid != 0 ? " and the broker" : "");
  }
  for (const std::string& w : r.warnings)
    std::fprintf(out, "  warning: %s\n", w.c_str());
}

namespace {

void write_json(Json& j, const Report& r) {
  const CommonOptions& o = r.options;
  const ThreadStats& t = r.totals;
  j.begin_object();
  j.field("scenario", r.scenario);
  j.field("preset", o.preset);
  j.field("ok", r.ok);
  j.field("started", r.started);
  j.field("error", r.error);
  j.field("target", r.target);
  j.begin_object("config");
  for (const auto& [key, value] : r.params)
    j.field(key.c_str(), value);
  j.field("qos", static_cast<unsigned>(o.qos));
  j.field("sub_qos", static_cast<unsigned>(o.sub_qos));
  j.field("payload", o.payload);
  j.field("mqtt_version", version_name(o.version));
  j.field("transport", o.tls ? "tls" : "tcp");
  if (o.tls) j.field("tls", t.tls);
  j.field("duration_s", o.duration_s);
  j.field("warmup_s", o.warmup_s);
  j.field("drain_s", o.drain_s);
  j.field("rate", o.rate);
  j.field("window", o.window);
  j.field("count", o.count);
  j.field("connect_rate", o.connect_rate);
  j.field("threads", r.threads);
  j.field("clients", static_cast<uint64_t>(r.clients));
  j.field("cores", r.cores);
  j.end_object();
  j.field("window_s", r.window_s);
  j.field("sent", t.sent_window);
  j.field("sent_total", t.sent_total);
  j.field("sent_per_s", r.sent_per_s());
  j.field("expected", r.expected_window);
  j.field("expected_total", r.expected);
  j.field("received", t.received_window);
  j.field("received_total", t.received_total);
  j.field("received_per_s", r.received_per_s());
  j.field("lost", r.lost);
  j.field("duplicates", t.duplicates);
  j.field("out_of_order", t.out_of_order);
  j.field("window_stalls", t.window_stalls);
  j.field("misrouted", t.misrouted);
  j.field("bad_payload", t.bad_payload);
  j.field("rejected", t.rejected);
  j.field("unacked", t.unacked);
  auto histogram = [&j](const char* key, const Histogram& h) {
    j.begin_object(key);
    j.field("count", h.count());
    j.field("min", us(h.min()));
    j.field("mean", h.mean() / 1e3);
    j.field("p50", us(h.quantile(0.50)));
    j.field("p90", us(h.quantile(0.90)));
    j.field("p99", us(h.quantile(0.99)));
    j.field("p999", us(h.quantile(0.999)));
    j.field("max", us(h.max()));
    j.end_object();
  };
  histogram("latency_us", t.latency);
  j.field("latency_label", r.latency_label);
  if (r.scheduled()) {
    // Rate mode: latency_us is from the send time; these name both explicitly.
    histogram("latency_from_send_us", t.latency);
    histogram("latency_from_schedule_us", t.latency_from_schedule);
    j.field("latency_from_schedule_label", kScheduleLatencyLabel);
    j.field("behind_schedule", t.behind_schedule);
  }
  j.begin_object("connect");
  j.field("connected", t.connected);
  j.field("seconds", r.connect_s);
  j.field("per_s", r.connects_per_s());
  j.end_object();
  histogram("connack_latency_us", t.connect_latency);
  j.begin_object("results");
  for (const ScenarioResult& res : r.results)
    j.field(res.key.c_str(), res.value);
  j.end_object();
  j.begin_array("publishers");
  for (const PublisherSummary& p : r.publishers) {
    j.begin_object();
    j.field("index", static_cast<uint64_t>(p.index));
    j.field("sent", p.sent);
    j.field("expected", p.expected);
    j.field("received", p.received);
    j.field("lost", p.lost);
    j.field("duplicates", p.duplicates);
    j.field("out_of_order", p.out_of_order);
    j.end_object();
  }
  j.end_array();
  j.begin_array("bench_threads");
  for (const ThreadReport& tr : r.thread_reports) {
    j.begin_object();
    j.field("index", tr.index);
    j.field("user_s", tr.user_s);
    j.field("sys_s", tr.sys_s);
    j.field("wait_s", tr.wait_s);
    j.field("wall_s", tr.wall_s);
    j.field("cpu_percent", tr.cpu_percent());
    j.field("saturated", tr.saturated());
    j.field("starved", tr.starved());
    j.end_object();
  }
  j.end_array();
  if (r.broker.pid != 0) {
    j.begin_object("broker_process");
    j.field("pid", r.broker.pid);
    j.field("samples", r.broker.samples);
    j.field("cpu_avg_percent", r.broker.cpu_avg_percent);
    j.field("cpu_max_percent", r.broker.cpu_max_percent);
    j.field("wait_percent", r.broker.wait_percent);
    j.field("rss_max_kb", r.broker.rss_max_kb);
    j.field("rss_baseline_kb", r.broker.rss_baseline_kb);
    j.field("rss_last_kb", r.broker.rss_last_kb);
    j.field("bytes_per_connection", r.broker.bytes_per_connection);
    j.field("exited", r.broker.exited);
    j.end_object();
  }
  j.field("machine_busy_cores", r.machine_busy_cores);
  j.field("other_cores", r.other_cores);
  j.begin_array("warnings");
  for (const std::string& w : r.warnings)
    j.value(w);
  j.end_array();
  j.end_object();
}

}  // namespace

void print_json(const Report& r, std::FILE* out) {
  Json j(out);
  write_json(j, r);
  std::fputc('\n', out);
}

void print_sweep_text(const std::vector<Report>& runs, const std::string& sweep_param,
                      std::FILE* out) {
  for (const Report& r : runs) {
    print_text(r, out);
    std::fprintf(out, "\n");
  }
  // Rate mode adds the p99 from schedule next to the p50/p99 from send.
  const bool scheduled = !runs.empty() && runs.front().scheduled();
  std::fprintf(out, "sweep over %s:\n", sweep_param.c_str());
  std::fprintf(out, "  %12s %14s %14s %10s %12s %12s %s%10s %s\n", sweep_param.c_str(),
               "sent msg/s", "received msg/s", "lost", "p50", "p99",
               scheduled ? "p99 schedule " : "", "broker CPU", "");
  for (const Report& r : runs) {
    int64_t value = 0;
    for (const auto& [key, v] : r.params) {
      if (key == sweep_param) value = v;
    }
    const Histogram& h = r.totals.latency;
    std::string sched;
    if (scheduled) sched = human_ns(r.totals.latency_from_schedule.quantile(0.99));
    std::fprintf(
        out, "  %12" PRId64 " %14.0f %14.0f %10" PRIu64 " %12s %12s %s%s%9.0f%% %s\n", value,
        r.sent_per_s(), r.received_per_s(), r.lost, human_ns(h.quantile(0.5)).c_str(),
        human_ns(h.quantile(0.99)).c_str(),
        scheduled ? (std::string(12 - std::min<size_t>(12, sched.size()), ' ') + sched).c_str()
                  : "",
        scheduled ? " " : "", r.broker.cpu_avg_percent, r.ok ? "" : ("FAILED: " + r.error).c_str());
  }
}

void print_sweep_json(const std::vector<Report>& runs, const std::string& sweep_param,
                      std::FILE* out) {
  Json j(out);
  j.begin_object();
  j.field("preset", runs.empty() ? std::string() : runs.front().options.preset);
  j.field("scenario", runs.empty() ? std::string() : runs.front().scenario);
  j.field("sweep", sweep_param);
  bool ok = true;
  for (const Report& r : runs)
    ok = ok && r.ok;
  j.field("ok", ok);
  j.begin_array("runs");
  for (const Report& r : runs)
    write_json(j, r);
  j.end_array();
  j.end_object();
  std::fputc('\n', out);
}

}  // namespace starling::bench
