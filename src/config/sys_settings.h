// [sys]: the $SYS topics the broker publishes about itself.
#pragma once

#include <cstdint>

namespace starling::config {

struct SysSettings {
  uint32_t interval_s = 10;  // [sys] interval: seconds between publishes; 0 disables them
  bool operator==(const SysSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [sys] section, for the loader (config.cc).
Field<Config> sys_section();

}  // namespace starling::config
