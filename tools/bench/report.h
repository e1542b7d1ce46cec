// The result of one run and its two renderings: a summary for people (stdout by default) and a
// single JSON object (--json) for scripts such as bench/pairs.sh.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "options.h"
#include "stats.h"

namespace starling::bench {

struct ThreadReport {
  int index = 0;
  double user_s = 0;
  double sys_s = 0;
  double wait_s = 0;
  double wall_s = 0;
  double cpu_percent() const { return wall_s > 0 ? (user_s + sys_s) / wall_s * 100 : 0; }
  double wait_percent() const { return wall_s > 0 ? wait_s / wall_s * 100 : 0; }
  // Above 90% of the window on CPU: the load generator itself may be the bottleneck.
  bool saturated() const { return cpu_percent() > 90; }
  // On CPU or waiting for one above 90% of the window: the thread had work all the time but
  // shared its core; the machine, not the broker, may set the pace.
  bool starved() const { return cpu_percent() + wait_percent() > 90; }
};

struct BrokerReport {
  int pid = 0;  // 0: not sampled
  int samples = 0;
  double cpu_avg_percent = 0;
  double cpu_max_percent = 0;
  double wait_percent = 0;  // threads runnable but not running, percent of one core
  uint64_t rss_max_kb = 0;
  uint64_t rss_baseline_kb = 0;  // before the bench's first connect
  uint64_t rss_last_kb = 0;      // at the end of the window
  // (rss_last - rss_baseline) / clients connected: what one connection costs the broker.
  double bytes_per_connection = 0;
  bool exited = false;  // gone (or a zombie) by the end of the run
};

// Per publisher, over the whole run (warmup and drain included).
struct PublisherSummary {
  uint32_t index = 0;
  uint64_t sent = 0;
  uint64_t expected = 0;  // deliveries owed: sent x receivers
  uint64_t received = 0;  // distinct messages received, summed over receivers
  uint64_t lost = 0;      // expected - received
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
};

// A scenario-specific figure, e.g. retained rounds completed.
struct ScenarioResult {
  std::string key;
  double value = 0;
  std::string unit;
  std::string label;
};

// What the rate-mode second latency measures.
inline constexpr const char* kScheduleLatencyLabel = "due time (slot in the schedule) to receive";

struct Report {
  std::string scenario;
  CommonOptions options;
  std::string target;
  unsigned threads = 0;
  size_t clients = 0;
  std::vector<std::pair<std::string, int64_t>> params;  // scenario-specific, e.g. {"pairs", 10}

  ThreadStats totals;            // merged over threads (its CPU fields are unused)
  uint64_t expected = 0;         // sum over publishers of sent x receivers
  uint64_t expected_window = 0;  // the same for messages sent in the window
  uint64_t lost = 0;             // sum over publishers of (expected - distinct received)
  std::vector<PublisherSummary> publishers;
  std::vector<ScenarioResult> results;
  std::string latency_label = "publish to receive";
  // How the scenario uses the timeline, for the summary; empty: publishers on a rate or window.
  std::string schedule;
  bool memory_per_connection = false;  // the scenario is about what connections cost
  double connect_s = 0;                // first connect() to last client ready
  unsigned cores = 0;                  // std::thread::hardware_concurrency()
  std::vector<ThreadReport> thread_reports;
  BrokerReport broker;
  // Whole machine over the window, in cores, and what is left after the bench's loop threads
  // and the broker (when --broker-pid is given): other processes competing for the CPU.
  double machine_busy_cores = 0;
  double other_cores = 0;

  bool ok = false;
  bool started = false;  // every client connected and the timeline began
  std::string error;
  std::vector<std::string> warnings;

  // The measurement window as it happened: options.duration_s unless the run was cut short.
  double window_s = 0;

  double sent_per_s() const { return window_s > 0 ? totals.sent_window / window_s : 0; }
  double connects_per_s() const { return connect_s > 0 ? totals.connected / connect_s : 0; }
  double received_per_s() const { return window_s > 0 ? totals.received_window / window_s : 0; }
  // Publishers ran on a rate schedule (traffic scenarios with --rate): latency is reported
  // from the send time and from the due time.
  bool scheduled() const { return options.rate > 0 && has_schedule_latency; }
  bool has_schedule_latency = false;  // the scenario records latency_from_schedule
};

void print_text(const Report& r, std::FILE* out);
void print_json(const Report& r, std::FILE* out);
// A sweep (several runs of one scenario varying one parameter): each run's summary, then a
// table; in JSON one object {"preset", "sweep", "runs": [...]}.
void print_sweep_text(const std::vector<Report>& runs, const std::string& sweep_param,
                      std::FILE* out);
void print_sweep_json(const std::vector<Report>& runs, const std::string& sweep_param,
                      std::FILE* out);

}  // namespace starling::bench
