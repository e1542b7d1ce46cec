// Topic filter matching for ACL rules, level by level: '+' matches one level, '#' (last level
// only) matches the rest including the parent ("a/#" matches "a"), and a filter starting with a
// wildcard does not match a topic starting with '$' (MQTT 4.7.2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace starling::auth {

// A filter split on '/' once, so per-message matching does not re-parse it.
class TopicFilter {
 public:
  // Assumes valid_filter(text).
  explicit TopicFilter(std::string_view text);

  const std::string& text() const { return text_; }
  bool matches(std::string_view topic) const;
  // True when every topic `narrower` can match is matched by this filter ("a/#" covers
  // "a/+/c"; "a/+" does not cover "a/#").
  bool covers(const TopicFilter& narrower) const;
  bool is_multi_level_wildcard() const { return levels_.size() == 1 && levels_[0] == "#"; }

 private:
  std::string text_;
  std::vector<std::string> levels_;
};

// Non-empty, no NUL, '+' only as a whole level, '#' only as the whole last level.
bool valid_filter(std::string_view text);

}  // namespace starling::auth
