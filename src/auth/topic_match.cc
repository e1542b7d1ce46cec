#include "auth/topic_match.h"

namespace starling::auth {
namespace {

bool dollar_topic(std::string_view topic) {
  return !topic.empty() && topic.front() == '$';
}

}  // namespace

TopicFilter::TopicFilter(std::string_view text) : text_(text) {
  size_t start = 0;
  while (true) {
    const size_t slash = text.find('/', start);
    if (slash == std::string_view::npos) {
      levels_.emplace_back(text.substr(start));
      break;
    }
    levels_.emplace_back(text.substr(start, slash - start));
    start = slash + 1;
  }
}

bool TopicFilter::matches(std::string_view topic) const {
  if (dollar_topic(topic) && (levels_[0] == "+" || levels_[0] == "#")) return false;
  // Walks the topic in place: this runs per message and must not allocate.
  size_t pos = 0;
  bool topic_done = false;
  for (const std::string& level : levels_) {
    if (level == "#") return true;
    if (topic_done) return false;
    const size_t slash = topic.find('/', pos);
    const std::string_view topic_level =
        topic.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (slash == std::string_view::npos) {
      topic_done = true;
    } else {
      pos = slash + 1;
    }
    if (level != "+" && level != topic_level) return false;
  }
  return topic_done;
}

bool TopicFilter::covers(const TopicFilter& narrower) const {
  const std::vector<std::string>& wide = levels_;
  const std::vector<std::string>& narrow = narrower.levels_;
  // A literal '$' first level is not reachable through a leading wildcard. (A narrower filter
  // with a leading wildcard matches no '$' topics, so nothing is lost there.)
  if (dollar_topic(narrow[0]) && (wide[0] == "+" || wide[0] == "#")) return false;
  for (size_t i = 0; i < narrow.size(); ++i) {
    if (i == wide.size()) return false;  // the narrower filter reaches deeper
    if (wide[i] == "#") return true;
    // Every topic has a first level, so "+/#" matches all that "#" does.
    if (narrow[i] == "#")
      return i == 0 && wide.size() == 2 && wide[0] == "+" &&
             wide[1] == "#";  // matches levels (and the parent) `wide` does not
    if (wide[i] == "+") continue;
    if (narrow[i] == "+" || narrow[i] != wide[i]) return false;
  }
  // Same depth covers; one level more is fine only as "#", which also matches its parent.
  return wide.size() == narrow.size() || (wide.size() == narrow.size() + 1 && wide.back() == "#");
}

bool valid_filter(std::string_view text) {
  if (text.empty() || text.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (true) {
    const size_t slash = text.find('/', start);
    const bool last = slash == std::string_view::npos;
    const std::string_view level =
        text.substr(start, last ? std::string_view::npos : slash - start);
    if (level.find('#') != std::string_view::npos && (level != "#" || !last)) return false;
    if (level.find('+') != std::string_view::npos && level != "+") return false;
    if (last) return true;
    start = slash + 1;
  }
}

}  // namespace starling::auth
