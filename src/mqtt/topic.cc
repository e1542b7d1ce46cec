#include "mqtt/topic.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace starling::mqtt {
namespace {

constexpr size_t kMaxTopicBytes = 0xFFFF;
constexpr std::string_view kSharePrefix = "$share/";

// A level-by-level view of a topic or filter. "a//b" has three levels, "" has one (empty).
class Levels {
 public:
  explicit Levels(std::string_view s) : s_(s) {}
  bool done() const { return done_; }
  std::string_view next() {
    const size_t slash = s_.find('/', pos_);
    std::string_view level;
    if (slash == std::string_view::npos) {
      level = s_.substr(pos_);
      done_ = true;
    } else {
      level = s_.substr(pos_, slash - pos_);
      pos_ = slash + 1;
    }
    return level;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  bool done_ = false;
};

// Non-shared filter rules of section 4.7.1: wildcards occupy whole levels and '#' comes last.
bool valid_plain_filter(std::string_view filter) {
  Levels levels(filter);
  while (!levels.done()) {
    const std::string_view level = levels.next();
    if (level.find('#') != std::string_view::npos && (level != "#" || !levels.done())) {
      return false;
    }
    if (level.find('+') != std::string_view::npos && level != "+") return false;
  }
  return true;
}

bool continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // Topics are nearly always ASCII: skip eight bytes at a time while none has the high bit
    // set and none is zero.
    if (n - i >= 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      constexpr uint64_t kHigh = 0x8080808080808080ULL;
      constexpr uint64_t kOnes = 0x0101010101010101ULL;
      if ((w & kHigh) == 0 && ((w - kOnes) & ~w & kHigh) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0) return false;  // [MQTT-1.5.4-2]
      ++i;
      continue;
    }
    // The second-byte ranges below exclude overlong forms (C0, C1, E0 80..9F, F0 80..8F),
    // surrogates (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF) per RFC 3629.
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      if (!continuation(p[i + k])) return false;
    }
    i += len;
  }
  return true;
}

bool has_wildcard(std::string_view text) {
  return !text.empty() && (std::memchr(text.data(), '+', text.size()) != nullptr ||
                           std::memchr(text.data(), '#', text.size()) != nullptr);
}

bool valid_topic_name(std::string_view topic) {
  return !topic.empty() && topic.size() <= kMaxTopicBytes && !has_wildcard(topic) &&
         valid_utf8(topic);
}

bool reserved_topic_name(std::string_view topic) {
  auto at_or_below = [topic](std::string_view root) {
    return topic.starts_with(root) && (topic.size() == root.size() || topic[root.size()] == '/');
  };
  return at_or_below("$SYS") || at_or_below("$share");
}

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty() || filter.size() > kMaxTopicBytes || !valid_utf8(filter)) return false;
  if (!filter.starts_with(kSharePrefix)) return valid_plain_filter(filter);
  std::string_view group, rest;
  if (!split_shared_filter(filter, group, rest)) return false;  // "$share/group" with no filter
  return !group.empty() && !has_wildcard(group) && !rest.empty() && valid_plain_filter(rest);
}

bool split_shared_filter(std::string_view filter, std::string_view& group, std::string_view& rest) {
  if (!filter.starts_with(kSharePrefix)) return false;
  const std::string_view tail = filter.substr(kSharePrefix.size());
  const size_t slash = tail.find('/');
  if (slash == std::string_view::npos) return false;
  group = tail.substr(0, slash);
  rest = tail.substr(slash + 1);
  return true;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  // [MQTT-4.7.2-1]: '$' topics are only reached by filters that spell out their first level.
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  Levels f(filter), t(topic);
  while (true) {
    const std::string_view fl = f.next();
    // '#' also matches the parent level: "sport/#" matches "sport".
    if (fl == "#") return true;
    if (t.done()) return false;
    const std::string_view tl = t.next();
    if (fl != "+" && fl != tl) return false;
    if (f.done()) return t.done();
  }
}

size_t topic_levels(std::string_view topic) {
  return static_cast<size_t>(std::count(topic.begin(), topic.end(), '/')) + 1;
}

}  // namespace starling::mqtt
