#include "auth/acl.h"

namespace starling::auth {
namespace {

constexpr std::string_view kWhitespace = " \t\r";
constexpr std::string_view kSharePrefix = "$share/";

std::string_view trim(std::string_view s) {
  const size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(kWhitespace);
  return s.substr(first, last - first + 1);
}

// Splits off the first word; the rest comes back trimmed.
std::string_view first_word(std::string_view s, std::string_view& rest) {
  const size_t end = s.find_first_of(kWhitespace);
  if (end == std::string_view::npos) {
    rest = {};
    return s;
  }
  rest = trim(s.substr(end));
  return s.substr(0, end);
}

std::optional<AclAccess> access_word(std::string_view word) {
  if (word == "read") return AclAccess::Read;
  if (word == "write") return AclAccess::Write;
  if (word == "readwrite") return AclAccess::ReadWrite;
  if (word == "deny") return AclAccess::Deny;
  return std::nullopt;
}

// One pass, so a substituted value is never scanned again: a client id of "%u" stays literal.
std::string substitute(std::string_view pattern, std::string_view username,
                       std::string_view client_id) {
  std::string out;
  out.reserve(pattern.size() + username.size() + client_id.size());
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'u') {
      out += username;
      ++i;
    } else if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'c') {
      out += client_id;
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

// A value that would change the meaning of the filter it is pasted into cannot be substituted.
bool substitutable(std::string_view value) {
  return !value.empty() && value.find_first_of(std::string_view("+#/\0", 4)) == std::string::npos;
}

bool any_matches(const std::vector<TopicFilter>& rules, std::string_view topic) {
  for (const TopicFilter& rule : rules) {
    if (rule.matches(topic)) return true;
  }
  return false;
}

bool any_covers(const std::vector<TopicFilter>& rules, const TopicFilter& filter) {
  for (const TopicFilter& rule : rules) {
    if (rule.covers(filter)) return true;
  }
  return false;
}

bool dollar_topic(std::string_view topic) {
  return !topic.empty() && topic.front() == '$';
}

}  // namespace

ClientAcl ClientAcl::allow_all() {
  ClientAcl acl;
  acl.allow_all_ = true;
  return acl;
}

bool ClientAcl::can_publish(std::string_view topic) const {
  if (allow_all_ || (writes_everything_ && !dollar_topic(topic))) return true;
  return !any_matches(deny_, topic) && any_matches(write_, topic);
}

bool ClientAcl::can_read(std::string_view topic) const {
  if (allow_all_ || (reads_everything_ && !dollar_topic(topic))) return true;
  return !any_matches(deny_, topic) && any_matches(read_, topic);
}

bool ClientAcl::can_subscribe(std::string_view filter) const {
  if (filter.starts_with(kSharePrefix)) {
    const size_t slash = filter.find('/', kSharePrefix.size());
    if (slash == std::string_view::npos || slash == kSharePrefix.size()) return false;
    filter.remove_prefix(slash + 1);
  }
  if (!valid_filter(filter)) return false;
  if (allow_all_) return true;
  const TopicFilter wanted(filter);
  return !any_covers(deny_, wanted) && any_covers(read_, wanted);
}

AclFile AclFile::load(const std::string& path) {
  return parse(read_file_text(path), path);
}

AclFile AclFile::parse(std::string_view text, std::string_view name) {
  AclFile file;
  std::vector<Rule>* section = &file.anonymous_;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty() || line.front() == '#') continue;

    auto fail = [&](const std::string& reason) {
      throw LoadError(std::string(name) + ":" + std::to_string(line_number) + ": " + reason);
    };
    std::string_view rest;
    const std::string_view keyword = first_word(line, rest);
    if (keyword == "user") {
      if (rest.empty()) fail("missing user name after 'user'");
      section = &file.users_[std::string(rest)];
      continue;
    }
    if (keyword != "topic" && keyword != "pattern") {
      fail("unknown directive '" + std::string(keyword) + "' (expected user, topic or pattern)");
    }
    if (rest.empty()) fail("missing topic filter after '" + std::string(keyword) + "'");
    AclAccess access = AclAccess::ReadWrite;
    std::string_view after_access;
    const std::string_view word = first_word(rest, after_access);
    if (const auto given = access_word(word)) {
      if (after_access.empty()) fail("missing topic filter after '" + std::string(word) + "'");
      access = *given;
      rest = after_access;
    }
    const bool pattern = keyword == "pattern";
    // Substituted values never hold '+', '#' or '/', so a stand-in checks the pattern's shape.
    const std::string shape = pattern ? substitute(rest, "u", "c") : std::string(rest);
    if (!valid_filter(shape)) fail("invalid topic filter '" + std::string(rest) + "'");
    (pattern ? file.patterns_ : *section).push_back(Rule{access, std::string(rest)});
  }
  return file;
}

ClientAcl AclFile::compile_for(std::optional<std::string_view> username,
                               std::string_view client_id) const {
  ClientAcl acl;
  auto add = [&acl](AclAccess access, std::string_view filter) {
    switch (access) {
      case AclAccess::Read:
        acl.read_.emplace_back(filter);
        break;
      case AclAccess::Write:
        acl.write_.emplace_back(filter);
        break;
      case AclAccess::ReadWrite:
        acl.read_.emplace_back(filter);
        acl.write_.emplace_back(filter);
        break;
      case AclAccess::Deny:
        acl.deny_.emplace_back(filter);
        break;
    }
  };

  const std::vector<Rule>* own = &anonymous_;
  if (username) {
    const auto it = users_.find(*username);
    own = it == users_.end() ? nullptr : &it->second;
  }
  if (own != nullptr) {
    for (const Rule& rule : *own)
      add(rule.access, rule.filter);
  }

  const bool username_ok = username && substitutable(*username);
  const bool client_id_ok = substitutable(client_id);
  for (const Rule& rule : patterns_) {
    const bool uses_username = rule.filter.find("%u") != std::string::npos;
    const bool uses_client_id = rule.filter.find("%c") != std::string::npos;
    if ((uses_username && !username_ok) || (uses_client_id && !client_id_ok)) continue;
    add(rule.access, substitute(rule.filter, username.value_or(""), client_id));
  }

  auto has_everything = [](const std::vector<TopicFilter>& rules) {
    for (const TopicFilter& rule : rules) {
      if (rule.is_multi_level_wildcard()) return true;
    }
    return false;
  };
  acl.reads_everything_ = acl.deny_.empty() && has_everything(acl.read_);
  acl.writes_everything_ = acl.deny_.empty() && has_everything(acl.write_);
  return acl;
}

}  // namespace starling::auth
