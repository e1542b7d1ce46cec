#include "config/sys_settings.h"

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

const std::vector<Field<SysSettings>>& sys_fields() {
  static const std::vector<Field<SysSettings>> fields = {
      integer_field("interval", &SysSettings::interval_s),
  };
  return fields;
}

}  // namespace

Field<Config> sys_section() {
  return section("sys", &Config::sys, sys_fields());
}

}  // namespace starling::config
