#include "runner.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "fd_limit.h"
#include "proc_sampler.h"

namespace starling::bench {

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr uint64_t kSampleIntervalNs = 500'000'000;

volatile sig_atomic_t g_interrupted = 0;

void on_signal(int) {
  g_interrupted = 1;
}

uint64_t seconds_ns(double s) {
  return static_cast<uint64_t>(s * 1e9);
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Per publisher: what it sent and what its receivers got. Streams of one shared-subscription
// group (merge_bits) are merged by OR-ing their sequence bitmaps: the group received a message
// once however many members got it, and every extra copy is a duplicate.
void merge_publishers(Report& report) {
  std::map<uint32_t, PublisherSummary> pubs;
  for (const PublisherResult& r : report.totals.publishers) {
    PublisherSummary& p = pubs[r.publisher];
    p.index = r.publisher;
    p.sent += r.sent;
    p.expected += r.expected;
    report.expected += r.expected;
    report.expected_window += r.expected_window;
  }
  struct Group {
    std::vector<uint64_t> bits;
    uint64_t member_unique = 0;
  };
  std::map<std::pair<uint32_t, uint32_t>, Group> groups;  // (receiver, publisher)
  for (StreamResult& st : report.totals.streams) {
    PublisherSummary& p = pubs[st.publisher];
    p.index = st.publisher;
    p.duplicates += st.duplicates;
    p.out_of_order += st.out_of_order;
    if (!st.merge_bits) {
      p.received += st.unique;
      continue;
    }
    Group& g = groups[{st.receiver, st.publisher}];
    g.member_unique += st.unique;
    if (g.bits.size() < st.bits.size()) g.bits.resize(st.bits.size(), 0);
    for (size_t i = 0; i < st.bits.size(); ++i)
      g.bits[i] |= st.bits[i];
  }
  for (const auto& [key, g] : groups) {
    uint64_t unique = 0;
    for (uint64_t w : g.bits)
      unique += static_cast<uint64_t>(std::popcount(w));
    PublisherSummary& p = pubs[key.second];
    p.received += unique;
    p.duplicates += g.member_unique - unique;
    report.totals.duplicates += g.member_unique - unique;
  }
  report.totals.streams.clear();
  report.totals.streams.shrink_to_fit();
  report.publishers.clear();
  report.lost = 0;
  for (auto& [index, p] : pubs) {
    p.lost = p.expected > p.received ? p.expected - p.received : 0;
    report.lost += p.lost;
    report.publishers.push_back(p);
  }
}

}  // namespace

bool run_scenario(const CommonOptions& opts, Scenario& scenario, Report& report) {
  report.scenario = scenario.name();
  report.options = opts;
  report.cores = std::thread::hardware_concurrency();

  LoopOptions loop_opts;
  loop_opts.version = opts.version;
  loop_opts.keep_alive = opts.keep_alive;
  loop_opts.session_expiry = opts.session_expiry;
  loop_opts.username = opts.username;
  loop_opts.password = opts.password;
  loop_opts.max_inflight = opts.max_inflight;
  if (opts.sub_port != 0) {
    if (!resolve_loopback(opts.host, opts.sub_port, loop_opts, report.error)) return false;
    loop_opts.sub_addr = loop_opts.addr;
    loop_opts.sub_addr_len = loop_opts.addr_len;
    loop_opts.sub_target = loop_opts.target;
  }
  if (!resolve_loopback(opts.host, opts.port, loop_opts, report.error)) return false;
  if (opts.tls) {
    loop_opts.tls = TlsClientContext::create(opts.tls_ca, opts.tls_min_version, report.error);
    if (!loop_opts.tls) return false;
  }
  report.target = loop_opts.target;
  if (opts.sub_port != 0) report.target += " (subscribers on " + loop_opts.sub_target + ")";

  std::unique_ptr<ProcSampler> sampler;
  if (opts.broker_pid > 0) {
    sampler = std::make_unique<ProcSampler>(opts.broker_pid);
    if (!sampler->alive()) {
      report.error = "--broker-pid " + std::to_string(opts.broker_pid) + ": no such process";
      return false;
    }
    report.broker.pid = opts.broker_pid;
  }

  unsigned threads = opts.threads != 0 ? opts.threads : std::thread::hardware_concurrency();
  threads = std::clamp(threads, 1u, std::max(1u, scenario.max_threads()));
  report.threads = threads;
  // Pacing is per loop: each takes its share.
  loop_opts.connect_rate = opts.connect_rate / threads;
  loop_opts.max_connecting =
      opts.max_connecting == 0 ? 0 : std::max(1u, (opts.max_connecting + threads - 1) / threads);

  RunControl control;
  std::vector<std::unique_ptr<ClientLoop>> loops;
  std::vector<ClientLoop*> loop_ptrs;
  for (unsigned i = 0; i < threads; ++i) {
    loops.push_back(std::make_unique<ClientLoop>(static_cast<int>(i), loop_opts, control));
    loop_ptrs.push_back(loops.back().get());
  }
  scenario.setup(loop_ptrs, control);
  size_t clients = 0;
  for (auto& l : loops)
    clients += l->client_count();
  report.clients = clients;
  scenario.describe(report);

  // One descriptor per client, plus epoll/eventfd per loop and stdio; the broker needs as many.
  if (!ensure_fd_limit(clients + 3 * threads + 32, report.error)) return false;
  if (sampler) {
    const size_t broker_limit = process_fd_limit(opts.broker_pid);
    if (broker_limit != 0 && broker_limit < clients + 16) {
      report.warnings.push_back("the broker's file descriptor limit is " +
                                std::to_string(broker_limit) + " for " + std::to_string(clients) +
                                " connections: start it after `ulimit -n " +
                                std::to_string(clients + 1024) + "`");
    }
    // What the broker holds before we connect, for memory per connection.
    report.broker.rss_baseline_kb = sampler->rss_kb_now();
  }
  double connect_timeout = opts.connect_timeout_s;
  if (opts.connect_rate > 0) {
    // Paced connects take clients / rate by design: the timeout covers the rest.
    connect_timeout += static_cast<double>(clients) / opts.connect_rate;
  }

  // SIGINT/SIGTERM stop the run cleanly (connections closed, partial report printed).
  struct sigaction sa = {};
  struct sigaction old_int = {};
  struct sigaction old_term = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_interrupted = 0;

  auto progress = [&](const char* fmt, auto... args) {
    if (opts.quiet) return;
    std::fprintf(stderr, "starling-bench: ");
    std::fprintf(stderr, fmt, args...);
    std::fputc('\n', stderr);
  };

  for (auto& l : loops)
    l->start();
  progress("connecting %zu clients to %s on %u threads", clients, loop_opts.target.c_str(),
           threads);

  // 1. Wait until every client is connected and subscribed.
  const uint64_t connect_deadline = now_ns() + seconds_ns(connect_timeout);
  while (control.ready_count() < static_cast<int>(clients) && !control.stopping()) {
    if (g_interrupted) {
      control.fail("interrupted");
    } else if (now_ns() > connect_deadline) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "only %d of %zu clients connected and subscribed within %.1f s",
                    control.ready_count(), clients, connect_timeout);
      control.fail(buf);
    }
    sleep_ms(1);
  }

  // 2. Fix the timeline and let the loops go.
  bool window_sampled = false;
  SystemCpu sys_first, sys_last;
  uint64_t sys_first_ns = 0, sys_last_ns = 0;
  if (!control.stopping()) {
    Timeline t;
    t.publish_start_ns = now_ns();
    t.measure_start_ns = t.publish_start_ns + seconds_ns(opts.warmup_s);
    t.measure_end_ns = t.measure_start_ns + seconds_ns(opts.duration_s);
    t.drain_end_ns = t.measure_end_ns + seconds_ns(opts.drain_s);
    control.start(t);
    report.started = true;
    progress("all connected; warmup %.1f s, measuring %.1f s, drain up to %.1f s", opts.warmup_s,
             opts.duration_s, opts.drain_s);

    // 3. Sample the broker through the window; watch for failures and interrupts throughout.
    uint64_t next_sample = t.measure_start_ns;
    while (control.finished_count() < static_cast<int>(loops.size())) {
      if (g_interrupted && !control.stopping()) control.fail("interrupted");
      const uint64_t now = now_ns();
      if (now >= next_sample && next_sample <= t.measure_end_ns) {
        if (sampler && !report.broker.exited && !sampler->sample(now)) {
          report.broker.exited = true;
          control.fail("broker process " + std::to_string(opts.broker_pid) +
                       " exited during the run");
        }
        SystemCpu sys;
        if (read_system_cpu(sys)) {
          if (sys_first_ns == 0) {
            sys_first = sys;
            sys_first_ns = now;
          }
          sys_last = sys;
          sys_last_ns = now;
        }
        // The last sample lands on the end of the window.
        next_sample = next_sample == t.measure_end_ns
                          ? UINT64_MAX
                          : std::min(next_sample + kSampleIntervalNs, t.measure_end_ns);
        window_sampled = true;
      }
      sleep_ms(next_sample > now + 10'000'000 ? 10 : 1);
    }
    const uint64_t end = std::min(now_ns(), t.measure_end_ns);
    report.window_s = end > t.measure_start_ns ? (end - t.measure_start_ns) / 1e9 : 0;
  }
  for (auto& l : loops)
    l->join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  // 4. Merge.
  for (auto& l : loops) {
    ThreadStats& s = l->stats();
    ThreadReport tr;
    tr.index = l->index();
    tr.user_s = s.cpu_user_s;
    tr.sys_s = s.cpu_sys_s;
    tr.wait_s = s.wait_s;
    tr.wall_s = s.wall_s;
    report.thread_reports.push_back(tr);
    report.totals.merge_counters(s);
  }
  merge_publishers(report);
  if (report.totals.first_connect_ns != 0 &&
      report.totals.last_ready_ns > report.totals.first_connect_ns) {
    report.connect_s =
        static_cast<double>(report.totals.last_ready_ns - report.totals.first_connect_ns) / 1e9;
  }
  scenario.summarize(report);

  if (sampler) {
    if (window_sampled) {
      report.broker.samples = sampler->samples();
      report.broker.cpu_avg_percent = sampler->avg_cpu_percent();
      report.broker.cpu_max_percent = sampler->max_cpu_percent();
      report.broker.wait_percent = sampler->avg_wait_percent();
      report.broker.rss_max_kb = sampler->max_rss_kb();
      report.broker.rss_last_kb = sampler->last_rss_kb();
      if (report.totals.connected > 0 && report.broker.rss_baseline_kb > 0) {
        const double grown = static_cast<double>(report.broker.rss_last_kb) -
                             static_cast<double>(report.broker.rss_baseline_kb);
        report.broker.bytes_per_connection =
            grown * 1024 / static_cast<double>(report.totals.connected);
      }
    }
    if (!sampler->alive()) report.broker.exited = true;
  }

  if (sys_last_ns > sys_first_ns) {
    report.machine_busy_cores =
        busy_cores(sys_first, sys_last, static_cast<double>(sys_last_ns - sys_first_ns) / 1e9);
    double known = report.broker.cpu_avg_percent / 100;
    for (const ThreadReport& tr : report.thread_reports)
      known += tr.cpu_percent() / 100;
    report.other_cores = std::max(0.0, report.machine_busy_cores - known);
    // Only meaningful when the broker is accounted for; otherwise the broker is the "other".
    if (sampler && report.other_cores > 0.2) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "other processes used %.2f cores during the window: figures are not "
                    "comparable with a quiet machine",
                    report.other_cores);
      report.warnings.push_back(buf);
    }
  }
  if (report.broker.wait_percent > 25) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "broker threads waited for a CPU %.0f%% of the window (oversubscribed cores)",
                  report.broker.wait_percent);
    report.warnings.push_back(buf);
  }
  for (const ThreadReport& tr : report.thread_reports) {
    if (tr.saturated()) {
      report.warnings.push_back("bench thread " + std::to_string(tr.index) + " was " +
                                std::to_string(static_cast<int>(tr.cpu_percent())) +
                                "% busy: the load generator may be the bottleneck");
    } else if (tr.starved()) {
      report.warnings.push_back(
          "bench thread " + std::to_string(tr.index) + " was busy " +
          std::to_string(static_cast<int>(tr.cpu_percent())) + "% and waiting for a core " +
          std::to_string(static_cast<int>(tr.wait_percent())) +
          "% of the window: the cores are oversubscribed, the machine may set the pace");
    }
  }
  size_t publishing = 0;
  for (const PublisherSummary& p : report.publishers)
    publishing += p.sent > 0 ? 1 : 0;
  if (opts.rate > 0 && opts.count == 0 && publishing > 0 && report.window_s > 0) {
    const double target = static_cast<double>(opts.rate) * static_cast<double>(publishing);
    if (report.sent_per_s() < 0.95 * target) {
      report.warnings.push_back("sent " +
                                std::to_string(static_cast<uint64_t>(report.sent_per_s())) +
                                " msg/s, below the requested " +
                                std::to_string(static_cast<uint64_t>(target)) + " msg/s");
    }
  }

  if (control.failed()) {
    report.error = control.error();
    report.ok = false;
    return false;
  }
  if (report.broker.exited) {
    report.error = "broker process " + std::to_string(opts.broker_pid) + " exited";
    report.ok = false;
    return false;
  }
  report.ok = true;
  return true;
}

}  // namespace starling::bench
