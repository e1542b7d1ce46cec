// What the fuzz targets of src/auth share: a trap for a broken invariant, and the input cut
// into lines (each tried as a topic, a filter, a token).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace starling::fuzz {

inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

// At most limit lines of text, split at '\n' (the last one may be empty).
inline std::vector<std::string_view> lines_of(std::string_view text, size_t limit) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size() && lines.size() < limit) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace starling::fuzz
