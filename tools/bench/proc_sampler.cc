#include "proc_sampler.h"

#include <unistd.h>

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace starling::bench {

ProcSampler::ProcSampler(int pid) : pid_(pid), ticks_per_s_(::sysconf(_SC_CLK_TCK)) {
  if (ticks_per_s_ <= 0) ticks_per_s_ = 100;
}

bool ProcSampler::alive() const {
  uint64_t ticks = 0, rss = 0;
  return read(ticks, rss);
}

bool ProcSampler::read(uint64_t& cpu_ticks, uint64_t& rss_kb) const {
  const std::string base = "/proc/" + std::to_string(pid_);
  std::string stat;
  {
    std::ifstream f(base + "/stat");
    if (!f) return false;
    std::getline(f, stat);
  }
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(stat.substr(paren + 1));
  std::string state;
  fields >> state;  // field 3
  if (state == "Z" || state == "X") return false;
  std::string skip;
  for (int field = 4; field <= 13; ++field)
    fields >> skip;
  uint64_t utime = 0, stime = 0;  // fields 14 and 15
  if (!(fields >> utime >> stime)) return false;
  cpu_ticks = utime + stime;

  std::ifstream status(base + "/status");
  if (!status) return false;
  rss_kb = 0;
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      rss_kb = std::strtoull(line.c_str() + 6, nullptr, 10);
      break;
    }
  }
  return true;
}

uint64_t ProcSampler::rss_kb_now() const {
  uint64_t ticks = 0, rss = 0;
  return read(ticks, rss) ? rss : 0;
}

bool ProcSampler::sample(uint64_t now_ns) {
  uint64_t ticks = 0, rss = 0;
  if (!read(ticks, rss)) return false;
  const uint64_t wait = process_wait_ns(pid_);
  if (samples_ == 0) {
    first_ticks_ = ticks;
    first_ns_ = now_ns;
    first_wait_ns_ = wait;
  } else if (now_ns > last_ns_) {
    const double cpu_s = static_cast<double>(ticks - last_ticks_) / ticks_per_s_;
    const double wall_s = static_cast<double>(now_ns - last_ns_) / 1e9;
    if (cpu_s / wall_s * 100 > max_cpu_) max_cpu_ = cpu_s / wall_s * 100;
  }
  last_ticks_ = ticks;
  last_ns_ = now_ns;
  last_wait_ns_ = wait;
  if (rss > max_rss_kb_) max_rss_kb_ = rss;
  last_rss_kb_ = rss;
  ++samples_;
  return true;
}

double ProcSampler::avg_cpu_percent() const {
  if (samples_ < 2 || last_ns_ <= first_ns_) return 0;
  const double cpu_s = static_cast<double>(last_ticks_ - first_ticks_) / ticks_per_s_;
  return cpu_s / (static_cast<double>(last_ns_ - first_ns_) / 1e9) * 100;
}

double ProcSampler::avg_wait_percent() const {
  if (samples_ < 2 || last_ns_ <= first_ns_ || last_wait_ns_ < first_wait_ns_) return 0;
  return static_cast<double>(last_wait_ns_ - first_wait_ns_) /
         static_cast<double>(last_ns_ - first_ns_) * 100;
}

namespace {

// Second field of a schedstat file: run_delay in ns.
uint64_t read_run_delay(const std::string& path) {
  std::ifstream f(path);
  uint64_t on_cpu = 0, run_delay = 0;
  if (!(f >> on_cpu >> run_delay)) return 0;
  return run_delay;
}

}  // namespace

uint64_t process_wait_ns(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  uint64_t sum = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    sum += read_run_delay(dir + "/" + e->d_name + "/schedstat");
  }
  ::closedir(d);
  return sum;
}

uint64_t thread_wait_ns() {
  return read_run_delay("/proc/thread-self/schedstat");
}

bool read_system_cpu(SystemCpu& out) {
  std::ifstream f("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};  // user nice system idle iowait irq softirq steal
  if (!(f >> cpu) || cpu != "cpu") return false;
  for (uint64_t& x : v) {
    if (!(f >> x)) return false;
  }
  out.total = 0;
  for (uint64_t x : v)
    out.total += x;
  out.busy = out.total - v[3] - v[4];
  return true;
}

double busy_cores(const SystemCpu& a, const SystemCpu& b, double wall_s) {
  static const long hz = [] {
    const long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? t : 100;
  }();
  if (wall_s <= 0 || b.busy < a.busy) return 0;
  return static_cast<double>(b.busy - a.busy) / hz / wall_s;
}

}  // namespace starling::bench
