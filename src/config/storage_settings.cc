#include "config/storage_settings.h"

#include <string_view>

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

constexpr std::string_view kDurabilities[] = {"none", "batch", "always"};

std::string read_dir(const Reader& r, const toml::node& n, const std::string& path) {
  std::string dir = r.string(n, path);
  if (dir.empty()) r.fail(n, path + " must not be empty");
  return dir;
}

const std::vector<Field<StorageSettings>>& storage_fields() {
  using S = StorageSettings;
  static const std::vector<Field<S>> fields = {
      field("dir", &S::dir, read_dir),
      one_of_field("durability", &S::durability, kDurabilities),
  };
  return fields;
}

}  // namespace

Field<Config> storage_section() {
  return section("storage", &Config::storage, storage_fields());
}

}  // namespace starling::config
