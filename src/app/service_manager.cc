#include "app/service_manager.h"

#include <systemd/sd-daemon.h>

#include <string>

namespace starling::app {

ServiceManager::ServiceManager() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
  }
}

void ServiceManager::notify(std::string_view state) {
  // NUL-terminated for sd_notify; it returns 0 when there is no manager to tell.
  const std::string text(state);
  sd_notify(0, text.c_str());
}

void ServiceManager::ready(std::string_view status) {
  notify("READY=1\nSTATUS=" + std::string(status));
}

void ServiceManager::reloading() {
  notify("RELOADING=1\nSTATUS=reloading the configuration");
}

void ServiceManager::stopping() {
  notify("STOPPING=1\nSTATUS=shutting down");
}

void ServiceManager::status(std::string_view status) {
  notify("STATUS=" + std::string(status));
}

void ServiceManager::ping() {
  notify("WATCHDOG=1");
}

}  // namespace starling::app
