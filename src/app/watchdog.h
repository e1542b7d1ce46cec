// The main thread's wait for signals, with systemd's watchdog pinged in between: only while
// the broker's loops answer, so a stuck worker gets the service restarted.
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>

#include "app/service_manager.h"

namespace starling::app {

class Watchdog {
 public:
  // alive: true when every loop answered the probe posted the call before (and posts the
  // next), as net::Server::loops_responsive does.
  Watchdog(ServiceManager& service, std::function<bool()> alive);

  // The next of `signals` (blocked in every thread). With the watchdog on, pings it every
  // ServiceManager::watchdog_interval() meanwhile, while alive() holds.
  int wait_signal(const sigset_t& signals);

 private:
  void ping_if_alive();

  ServiceManager& service_;
  std::function<bool()> alive_;
  std::chrono::steady_clock::time_point next_ping_;
  bool stalled_ = false;
};

}  // namespace starling::app
