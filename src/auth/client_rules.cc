#include "auth/client_rules.h"

#include <nlohmann/json.hpp>

namespace starling::auth {
namespace {

constexpr std::string_view kSharePrefix = "$share/";
constexpr std::string_view kLiteralPrefix = "eq ";

struct Placeholder {
  std::string_view text;
  bool username;  // otherwise the client id
};
constexpr Placeholder kPlaceholders[] = {
    {"%u", true}, {"${username}", true}, {"%c", false}, {"${clientid}", false}};

// One pass, so a substituted value is never scanned again: a client id of "%u" stays literal.
// used_username / used_client_id: whether the pattern pasted that value in.
std::string substitute(std::string_view pattern, std::string_view username,
                       std::string_view client_id, bool& used_username, bool& used_client_id) {
  used_username = used_client_id = false;
  std::string out;
  out.reserve(pattern.size() + username.size() + client_id.size());
  size_t i = 0;
  while (i < pattern.size()) {
    bool replaced = false;
    for (const Placeholder& p : kPlaceholders) {
      if (pattern.substr(i).starts_with(p.text)) {
        out += p.username ? username : client_id;
        (p.username ? used_username : used_client_id) = true;
        i += p.text.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += pattern[i++];
  }
  return out;
}

// A value that would change the meaning of the filter it is pasted into cannot be substituted.
bool substitutable(std::string_view value) {
  return !value.empty() && value.find_first_of(std::string_view("+#/\0", 4)) == std::string::npos;
}

std::optional<RuleAction> action_word(std::string_view word) {
  if (word == "publish") return RuleAction::Publish;
  if (word == "subscribe") return RuleAction::Subscribe;
  if (word == "all") return RuleAction::All;
  return std::nullopt;
}

// "qos": one level or a list of them, as a mask with bit q for QoS q. Null when malformed or
// empty.
std::optional<uint8_t> qos_mask_of(const nlohmann::json& value) {
  auto bit = [](const nlohmann::json& level) -> uint8_t {
    if (!level.is_number_integer()) return 0;
    // An unsigned value past int64 comes out negative: out of range like any other.
    const int64_t q = level.get<int64_t>();
    return q >= 0 && q <= 2 ? static_cast<uint8_t>(1u << q) : 0;
  };
  if (!value.is_array()) {
    const uint8_t mask = bit(value);
    if (mask == 0) return std::nullopt;
    return mask;
  }
  uint8_t mask = 0;
  for (const nlohmann::json& level : value) {
    const uint8_t one = bit(level);
    if (one == 0) return std::nullopt;
    mask |= one;
  }
  if (mask == 0) return std::nullopt;
  return mask;
}

// A value from the document in an error message: bounded, control bytes and non-ASCII replaced.
std::string shown(const nlohmann::json& value) {
  constexpr size_t kMax = 64;
  // dump() recurses: a list of plain values is printed, anything nested only named.
  bool nested = false;
  if (value.is_structured()) {
    for (const nlohmann::json& element : value)
      nested = nested || element.is_structured();
  }
  const std::string text =
      value.is_string() ? value.get<std::string>()
      : nested          ? std::string("a JSON ") + value.type_name()
                        : value.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  out += text.size() > kMax ? "...'" : "'";
  return out;
}

// The level of filter starting at pos, and where the next one starts (npos after the last).
std::string_view level_at(std::string_view filter, size_t pos, size_t& next) {
  const size_t slash = filter.find('/', pos);
  if (slash == std::string_view::npos) {
    next = std::string_view::npos;
    return filter.substr(pos);
  }
  next = slash + 1;
  return filter.substr(pos, slash - pos);
}

bool is_wildcard(std::string_view level) {
  return level == "+" || level == "#";
}

}  // namespace

bool filters_overlap(std::string_view a, std::string_view b) {
  size_t next_a = 0;
  size_t next_b = 0;
  std::string_view level_a = level_at(a, 0, next_a);
  std::string_view level_b = level_at(b, 0, next_b);
  // A leading wildcard matches no '$' topic (MQTT 4.7.2).
  if ((is_wildcard(level_a) && level_b.starts_with('$')) ||
      (is_wildcard(level_b) && level_a.starts_with('$'))) {
    return false;
  }
  while (true) {
    if (level_a == "#" || level_b == "#") return true;
    if (level_a != "+" && level_b != "+" && level_a != level_b) return false;
    const bool a_done = next_a == std::string_view::npos;
    const bool b_done = next_b == std::string_view::npos;
    // A filter that ends here meets the other only if that one's rest is "#", which also
    // matches its parent.
    if (a_done && b_done) return true;
    if (a_done) return b.substr(next_b) == "#";
    if (b_done) return a.substr(next_a) == "#";
    level_a = level_at(a, next_a, next_a);
    level_b = level_at(b, next_b, next_b);
  }
}

bool ClientRules::add_rule(std::string_view topic, bool allow, RuleAction action, uint8_t qos_mask,
                           Retain retain, std::string_view client_id,
                           std::optional<std::string_view> username, std::string& error) {
  Rule rule{TopicFilter("#")};
  rule.allow = allow;
  rule.action = action;
  rule.qos_mask = qos_mask;
  rule.retain = retain;
  if (topic.starts_with(kLiteralPrefix)) {
    rule.literal = true;
    topic.remove_prefix(kLiteralPrefix.size());
  }
  bool uses_username = false;
  bool uses_client_id = false;
  // Substituted values never hold '+', '#' or '/', so stand-ins check the template's shape.
  if (!valid_filter(substitute(topic, "u", "c", uses_username, uses_client_id))) {
    error = "invalid topic filter " + shown(nlohmann::json(topic));
    return false;
  }
  const bool fits = (!uses_username || (username && substitutable(*username))) &&
                    (!uses_client_id || substitutable(client_id));
  const std::string filter =
      substitute(topic, username.value_or(""), client_id, uses_username, uses_client_id);
  if (fits || (rule.literal && !allow)) {
    rule.filter = TopicFilter(filter);
  } else if (allow) {
    return true;  // dropped: it could only allow more than meant
  } else if (valid_filter(filter)) {
    rule.filter = TopicFilter(filter);  // the value as it is: denies at least what was meant
  } else {
    rule.denies_everything = true;
  }
  rules_.push_back(std::move(rule));
  return true;
}

bool ClientRules::parse_list(const nlohmann::json& rules, std::string_view client_id,
                             std::optional<std::string_view> username, std::string& error) {
  for (size_t i = 0; i < rules.size(); ++i) {
    const nlohmann::json& rule = rules[i];
    auto fail = [&](const std::string& why) {
      error = "rule " + std::to_string(i + 1) + ": " + why;
      return false;
    };
    if (!rule.is_object()) return fail("not a JSON object");
    std::optional<bool> allow;
    std::optional<RuleAction> action;
    const nlohmann::json* topic = nullptr;
    const nlohmann::json* topics = nullptr;
    uint8_t qos_mask = kAllQos;
    Retain retain = Retain::Any;
    for (const auto& [key, value] : rule.items()) {
      if (key == "permission") {
        if (value == "allow" || value == "deny") {
          allow = value == "allow";
        } else {
          return fail("permission " + shown(value) + " (allow or deny)");
        }
      } else if (key == "action") {
        if (value.is_string()) action = action_word(value.get_ref<const std::string&>());
        if (!action) return fail("action " + shown(value) + " (publish, subscribe or all)");
      } else if (key == "topic") {
        if (!value.is_string()) return fail("topic is not a string");
        topic = &value;
      } else if (key == "topics") {
        if (!value.is_array()) return fail("topics is not a list");
        topics = &value;
      } else if (key == "qos") {
        const std::optional<uint8_t> mask = qos_mask_of(value);
        if (!mask) return fail("qos " + shown(value) + " (0, 1, 2 or a non-empty list of them)");
        qos_mask = *mask;
      } else if (key == "retain") {
        if (value.is_boolean()) {
          retain = value.get<bool>() ? Retain::Set : Retain::Unset;
        } else if (value != "all") {
          return fail("retain " + shown(value) + " (true, false or \"all\")");
        }
      } else {
        return fail("unknown member " + shown(nlohmann::json(key)));
      }
    }
    if (!allow) return fail("no permission");
    if (!action) return fail("no action");
    if ((topic == nullptr) == (topics == nullptr)) return fail("needs one of topic or topics");
    if (topic != nullptr) {
      if (!add_rule(topic->get_ref<const std::string&>(), *allow, *action, qos_mask, retain,
                    client_id, username, error)) {
        return fail(error);
      }
      continue;
    }
    for (const nlohmann::json& each : *topics) {
      if (!each.is_string()) return fail("topics holds a JSON " + std::string(each.type_name()));
      if (!add_rule(each.get_ref<const std::string&>(), *allow, *action, qos_mask, retain,
                    client_id, username, error)) {
        return fail(error);
      }
    }
  }
  return true;
}

bool ClientRules::parse_object(const nlohmann::json& rules, std::string_view client_id,
                               std::optional<std::string_view> username, std::string& error) {
  for (const auto& [key, value] : rules.items()) {
    std::optional<RuleAction> action;
    if (key == "pub") action = RuleAction::Publish;
    if (key == "sub") action = RuleAction::Subscribe;
    if (key == "all") action = RuleAction::All;
    if (!action) {
      error = "unknown member " + shown(nlohmann::json(key)) + " (pub, sub or all)";
      return false;
    }
    if (!value.is_array()) {
      error = key + " is not a list";
      return false;
    }
    for (const nlohmann::json& topic : value) {
      if (!topic.is_string()) {
        error = key + " holds a JSON " + std::string(topic.type_name());
        return false;
      }
      std::string why;
      if (!add_rule(topic.get_ref<const std::string&>(), true, *action, kAllQos, Retain::Any,
                    client_id, username, why)) {
        error = key + ": " + why;
        return false;
      }
    }
  }
  return true;
}

std::optional<ClientRules> ClientRules::from_json(const nlohmann::json& rules,
                                                  std::string_view client_id,
                                                  std::optional<std::string_view> username,
                                                  std::string& error) {
  ClientRules out;
  bool ok = false;
  if (rules.is_array()) {
    ok = out.parse_list(rules, client_id, username, error);
  } else if (rules.is_object()) {
    ok = out.parse_object(rules, client_id, username, error);
  } else {
    error = std::string("the rules are a JSON ") + rules.type_name() + ", not a list or object";
  }
  if (!ok) return std::nullopt;
  out.rules_.shrink_to_fit();
  return out;
}

std::optional<bool> ClientRules::check_publish(std::string_view topic, uint8_t qos,
                                               bool retain) const {
  const uint8_t qos_bit = qos <= 2 ? static_cast<uint8_t>(1u << qos) : 0;
  for (const Rule& rule : rules_) {
    if (rule.action == RuleAction::Subscribe || (rule.qos_mask & qos_bit) == 0) continue;
    if ((rule.retain == Retain::Set && !retain) || (rule.retain == Retain::Unset && retain)) {
      continue;
    }
    const bool matches = rule.denies_everything ||
                         (rule.literal ? rule.filter.text() == topic : rule.filter.matches(topic));
    if (matches) return rule.allow;
  }
  return std::nullopt;
}

std::optional<bool> ClientRules::check_subscribe(std::string_view filter) const {
  if (filter.starts_with(kSharePrefix)) {
    const size_t slash = filter.find('/', kSharePrefix.size());
    if (slash == std::string_view::npos || slash == kSharePrefix.size()) return false;
    filter.remove_prefix(slash + 1);
  }
  if (!valid_filter(filter)) return false;
  const TopicFilter wanted(filter);
  for (const Rule& rule : rules_) {
    if (rule.action == RuleAction::Publish) continue;
    bool decides;
    if (rule.denies_everything) {
      decides = true;
    } else if (rule.literal) {
      decides = rule.filter.text() == filter;
    } else {
      decides =
          rule.allow ? rule.filter.covers(wanted) : filters_overlap(rule.filter.text(), filter);
    }
    if (decides) return rule.allow;
  }
  return std::nullopt;
}

}  // namespace starling::auth
