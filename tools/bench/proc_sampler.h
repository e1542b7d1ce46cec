// Samples another process (the broker under test) from /proc: CPU time from /proc/PID/stat,
// resident memory from /proc/PID/status, and time its threads spent runnable but waiting for a
// CPU from /proc/PID/task/*/schedstat. The runner calls sample() every 500 ms through the
// measurement window; averages are over the first-to-last sample span.
//
// Also: whole-machine CPU from /proc/stat, so a report can say when something other than the
// bench and the broker was competing for the cores (a shared 2-core box makes that common).
#pragma once

#include <cstdint>

namespace starling::bench {

class ProcSampler {
 public:
  explicit ProcSampler(int pid);

  int pid() const { return pid_; }
  // The process exists and is not a zombie.
  bool alive() const;
  // Takes one sample at now_ns (CLOCK_MONOTONIC); false if the process is gone.
  bool sample(uint64_t now_ns);

  int samples() const { return samples_; }
  // CPU over the sampled span, in percent of one core (200 = two cores busy).
  double avg_cpu_percent() const;
  // Highest CPU between two consecutive samples.
  double max_cpu_percent() const { return max_cpu_; }
  // Summed over threads: time runnable but not running, in percent of one core. High values
  // mean the broker was starved of CPU rather than slow.
  double avg_wait_percent() const;
  uint64_t max_rss_kb() const { return max_rss_kb_; }
  // RSS at the last sample.
  uint64_t last_rss_kb() const { return last_rss_kb_; }
  // RSS right now, without taking a sample; 0 if the process is gone.
  uint64_t rss_kb_now() const;

 private:
  // utime + stime in clock ticks, VmRSS in kB; false if unreadable or a zombie.
  bool read(uint64_t& cpu_ticks, uint64_t& rss_kb) const;

  int pid_;
  long ticks_per_s_;
  int samples_ = 0;
  uint64_t first_ticks_ = 0;
  uint64_t first_ns_ = 0;
  uint64_t first_wait_ns_ = 0;
  uint64_t last_ticks_ = 0;
  uint64_t last_ns_ = 0;
  uint64_t last_wait_ns_ = 0;
  double max_cpu_ = 0;
  uint64_t max_rss_kb_ = 0;
  uint64_t last_rss_kb_ = 0;
};

// Sum of run_delay (ns runnable but waiting for a CPU) over the threads of pid; 0 if
// unavailable (kernel without schedstats).
uint64_t process_wait_ns(int pid);
// run_delay of the calling thread.
uint64_t thread_wait_ns();

// Machine-wide CPU time from the first line of /proc/stat, in clock ticks.
struct SystemCpu {
  uint64_t busy = 0;  // everything but idle and iowait
  uint64_t total = 0;
};
bool read_system_cpu(SystemCpu& out);
// Cores' worth of busy CPU between two readings taken wall_s apart.
double busy_cores(const SystemCpu& a, const SystemCpu& b, double wall_s);

}  // namespace starling::bench
