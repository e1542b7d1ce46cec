// The service manager's protocol (systemd, Type=notify): readiness, reload and stop notices, a
// status line and the watchdog, through libsystemd's sd_notify. Started any other way
// (no NOTIFY_SOCKET in the environment) every call does nothing.
#pragma once

#include <chrono>
#include <string_view>

namespace starling::app {

class ServiceManager {
 public:
  ServiceManager();  // reads WATCHDOG_USEC (and WATCHDOG_PID) from the environment

  // WatchdogSec= is set for this process: ping() at least every watchdog_interval().
  bool watchdog_enabled() const { return watchdog_interval_.count() > 0; }
  // Half the manager's timeout, as sd_watchdog_enabled(3) advises.
  std::chrono::microseconds watchdog_interval() const { return watchdog_interval_; }

  // Listeners bound, store open: the manager may start what depends on the broker.
  void ready(std::string_view status);
  // SIGHUP: reloading now; ready() again when done.
  void reloading();
  void stopping();
  void status(std::string_view status);
  // The broker is alive: its loops answered (the caller checks before it pings).
  void ping();

 private:
  void notify(std::string_view state);

  std::chrono::microseconds watchdog_interval_{0};
};

}  // namespace starling::app
