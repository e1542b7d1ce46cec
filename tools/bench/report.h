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
  // Above 90% of the window on CPU: the load generator itself may be the bottleneck.
  bool saturated() const { return cpu_percent() > 90; }
};

struct BrokerReport {
  int pid = 0;  // 0: not sampled
  int samples = 0;
  double cpu_avg_percent = 0;
  double cpu_max_percent = 0;
  double wait_percent = 0;  // threads runnable but not running, percent of one core
  uint64_t rss_max_kb = 0;
  bool exited = false;  // gone (or a zombie) by the end of the run
};

struct Report {
  std::string scenario;
  CommonOptions options;
  std::string target;
  unsigned threads = 0;
  size_t clients = 0;
  std::vector<std::pair<std::string, int64_t>> params;  // scenario-specific, e.g. {"pairs", 10}

  ThreadStats totals;  // merged over threads (its CPU fields are unused)
  uint64_t lost = 0;   // sum over streams of (sent by its publisher - distinct received)
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
  double received_per_s() const { return window_s > 0 ? totals.received_window / window_s : 0; }
};

void print_text(const Report& r, std::FILE* out);
void print_json(const Report& r, std::FILE* out);

}  // namespace starling::bench
