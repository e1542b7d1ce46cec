#include "app/watchdog.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <ctime>
#include <utility>

namespace starling::app {

Watchdog::Watchdog(ServiceManager& service, std::function<bool()> alive)
    : service_(service), alive_(std::move(alive)), next_ping_(std::chrono::steady_clock::now()) {}

void Watchdog::ping_if_alive() {
  if (alive_()) {
    service_.ping();
    if (stalled_) spdlog::warn("watchdog: every worker loop answers again");
    stalled_ = false;
    return;
  }
  if (!stalled_) {
    spdlog::error(
        "watchdog: a worker loop has not answered for {} ms; systemd is no longer told the "
        "broker is alive",
        std::chrono::duration_cast<std::chrono::milliseconds>(service_.watchdog_interval())
            .count());
  }
  stalled_ = true;
}

int Watchdog::wait_signal(const sigset_t& signals) {
  if (!service_.watchdog_enabled()) {
    int sig = 0;
    return sigwait(&signals, &sig) == 0 ? sig : -1;
  }
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_ping_) {
      ping_if_alive();
      next_ping_ = now + service_.watchdog_interval();
    }
    const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(next_ping_ - now);
    timespec timeout{};
    timeout.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000);
    timeout.tv_nsec = static_cast<long>(wait.count() % 1'000'000'000);
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig > 0) return sig;
    // EAGAIN: a ping is due; EINTR: wait again.
  }
}

}  // namespace starling::app
