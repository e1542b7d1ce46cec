#include "report.h"

#include <cinttypes>
#include <cmath>
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
  if (!r.started) {
    // Nothing was measured: the error is all there is to say.
    std::fprintf(stderr, "starling-bench: error: %s\n", r.error.c_str());
    return;
  }
  const CommonOptions& o = r.options;
  const ThreadStats& t = r.totals;
  std::fprintf(out, "starling-bench %s against %s: ", r.scenario.c_str(), r.target.c_str());
  for (const auto& [key, value] : r.params)
    std::fprintf(out, "%s %" PRId64 ", ", key.c_str(), value);
  std::fprintf(out, "QoS %u, %u B payload, MQTT %s, %u threads, %zu clients\n", o.qos, o.payload,
               version_name(o.version), r.threads, r.clients);
  std::fprintf(out, "window %.1f s (warmup %.1f s, drain up to %.1f s), ", o.duration_s, o.warmup_s,
               o.drain_s);
  if (o.rate > 0) {
    std::fprintf(out, "rate %" PRIu64 " msg/s per publisher\n", o.rate);
  } else {
    std::fprintf(out, "unlimited rate, window %u msgs per publisher\n", o.window);
  }
  if (!r.ok) {
    std::fprintf(out, "\nERROR: %s\n", r.error.c_str());
    if (r.window_s < o.duration_s) std::fprintf(out, "(window cut short at %.2f s)\n", r.window_s);
  }
  std::fprintf(out, "\n");
  std::fprintf(out, "  sent          %12" PRIu64 "  %12.0f msg/s   (%" PRIu64 " in total)\n",
               t.sent_window, r.sent_per_s(), t.sent_total);
  std::fprintf(out, "  received      %12" PRIu64 "  %12.0f msg/s   (%" PRIu64 " in total)\n",
               t.received_window, r.received_per_s(), t.received_total);
  std::fprintf(out, "  lost          %12" PRIu64 "\n", r.lost);
  std::fprintf(out, "  duplicates    %12" PRIu64 "\n", t.duplicates);
  std::fprintf(out, "  out of order  %12" PRIu64 "\n", t.out_of_order);
  if (t.window_stalls > 0) {
    std::fprintf(out, "  window stalls %12" PRIu64 "   (no progress for %.1f s)\n", t.window_stalls,
                 o.stall_timeout_s);
  }
  if (t.misrouted > 0) std::fprintf(out, "  misrouted     %12" PRIu64 "\n", t.misrouted);
  if (t.bad_payload > 0) std::fprintf(out, "  bad payload   %12" PRIu64 "\n", t.bad_payload);
  if (t.rejected > 0) std::fprintf(out, "  rejected      %12" PRIu64 "\n", t.rejected);
  const Histogram& h = t.latency;
  std::fprintf(out,
               "  latency us    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f, "
               "%" PRIu64 " samples)\n",
               us(h.quantile(0.50)), us(h.quantile(0.90)), us(h.quantile(0.99)),
               us(h.quantile(0.999)), us(h.max()), h.mean() / 1e3, h.count());
  std::fprintf(out, "  bench CPU    ");
  for (const ThreadReport& tr : r.thread_reports) {
    std::fprintf(out, " #%d %.0f%% (sys %.0f%%, waiting %.0f%%)%s", tr.index, tr.cpu_percent(),
                 tr.wall_s > 0 ? tr.sys_s / tr.wall_s * 100 : 0.0,
                 tr.wall_s > 0 ? tr.wait_s / tr.wall_s * 100 : 0.0,
                 tr.saturated() ? " SATURATED" : "");
  }
  std::fprintf(out, "\n");
  if (r.broker.pid != 0) {
    std::fprintf(out,
                 "  broker pid %d  CPU avg %.0f%% (max %.0f%%), waiting for CPU %.0f%%, max RSS "
                 "%.1f MiB%s\n",
                 r.broker.pid, r.broker.cpu_avg_percent, r.broker.cpu_max_percent,
                 r.broker.wait_percent, r.broker.rss_max_kb / 1024.0,
                 r.broker.exited ? "  EXITED DURING RUN" : "");
  }
  if (r.machine_busy_cores > 0) {
    std::fprintf(out, "  machine      %.2f cores busy, %.2f of them outside the bench%s\n",
                 r.machine_busy_cores, r.other_cores, r.broker.pid != 0 ? " and the broker" : "");
  }
  for (const std::string& w : r.warnings)
    std::fprintf(out, "  warning: %s\n", w.c_str());
}

void print_json(const Report& r, std::FILE* out) {
  const CommonOptions& o = r.options;
  const ThreadStats& t = r.totals;
  Json j(out);
  j.begin_object();
  j.field("scenario", r.scenario);
  j.field("ok", r.ok);
  j.field("started", r.started);
  j.field("error", r.error);
  j.field("target", r.target);
  j.begin_object("config");
  for (const auto& [key, value] : r.params)
    j.field(key.c_str(), value);
  j.field("qos", static_cast<unsigned>(o.qos));
  j.field("payload", o.payload);
  j.field("mqtt_version", version_name(o.version));
  j.field("duration_s", o.duration_s);
  j.field("warmup_s", o.warmup_s);
  j.field("drain_s", o.drain_s);
  j.field("rate", o.rate);
  j.field("window", o.window);
  j.field("threads", r.threads);
  j.field("clients", static_cast<uint64_t>(r.clients));
  j.end_object();
  j.field("window_s", r.window_s);
  j.field("sent", t.sent_window);
  j.field("sent_total", t.sent_total);
  j.field("sent_per_s", r.sent_per_s());
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
  const Histogram& h = t.latency;
  j.begin_object("latency_us");
  j.field("count", h.count());
  j.field("min", us(h.min()));
  j.field("mean", h.mean() / 1e3);
  j.field("p50", us(h.quantile(0.50)));
  j.field("p90", us(h.quantile(0.90)));
  j.field("p99", us(h.quantile(0.99)));
  j.field("p999", us(h.quantile(0.999)));
  j.field("max", us(h.max()));
  j.end_object();
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
  std::fputc('\n', out);
}

}  // namespace starling::bench
