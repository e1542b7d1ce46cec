// Named presets: each one is a scenario and its flags, written out as the command line it
// stands for. `--preset NAME` puts that command line in front of the user's own arguments, so
// any flag given explicitly overrides the preset's, and `--list-presets` shows exactly what a
// figure was made with.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace starling::bench {

struct Preset {
  const char* name;
  const char* description;
  const char* args;  // scenario name first, then its flags
};

const std::vector<Preset>& presets();
const Preset* find_preset(std::string_view name);
// args split on spaces.
std::vector<std::string> preset_args(const Preset& p);

}  // namespace starling::bench
