// [storage]: where and how durably the broker keeps its state.
#pragma once

#include <string>

namespace starling::config {

struct StorageSettings {
  std::string dir = "data";
  std::string durability = "batch";  // "none" | "batch" | "always" (docs/durability.md)
  bool operator==(const StorageSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [storage] section, for the loader (config.cc).
Field<Config> storage_section();

}  // namespace starling::config
