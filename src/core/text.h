// Small text helpers for the parsers (header-only, so the self-contained parsing libraries can
// use them without linking the core library).
#pragma once

#include <algorithm>
#include <string_view>
#include <vector>

namespace starling::core {

// Every field between separators, empty ones included: "a,,b" -> {"a", "", "b"}, "" -> {""}.
inline std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(separator, start);
    fields.push_back(text.substr(start, at - start));
    if (at == std::string_view::npos) return fields;
    start = at + 1;
  }
}

// ASCII case-insensitive equality (HTTP header values and tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace starling::core
