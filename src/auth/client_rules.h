// One client's authorization rules from an authority outside the broker: the "acl" of an HTTP
// auth service's answer or of a JWT claim, in EMQX's forms, so that a service or token issuer
// written for EMQX works unchanged.
//
// Forms:
//   (a) EMQX 5, a list evaluated in order, first match wins:
//         [{"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all",
//           "topic": "t/1" (or "topics": ["t/1", ...]),
//           "qos": [0, 1, 2] (or one number), "retain": true|false|"all"}, ...]
//       "qos" and "retain" narrow what a rule says about publishing (a QoS 2 publish does not
//       match a rule with "qos": [0, 1]); subscriptions are checked without them. A topic
//       "eq t/#" is the literal text "t/#", matched only by an identical topic or filter.
//   (b) EMQX 4's JWT form, allow rules only: {"pub": ["a/#"], "sub": ["b/+"], "all": ["c"]}.
// Anything else in a rule (an unknown member or value, an invalid filter) makes the whole
// document an error: a condition that were ignored could widen what a rule allows.
//
// Placeholders: %c and ${clientid} become the client id, %u and ${username} the user name (one
// pass: a substituted value is not scanned again). A value that is empty or holds '+', '#', '/'
// or NUL could widen the filter it is pasted into, so, as for the patterns of acl.h:
// - an allow rule that needs such a value (or a user name the client does not have) is dropped;
// - a deny rule is not dropped, since dropping it would widen access: the value goes in as it
//   is, and when that does not make a valid filter the rule denies every topic of its action.
//
// Matching:
// - publish to T: the first rule for publishing whose filter matches T (and whose qos and
//   retain fit) decides.
// - subscribe to F ("$share/<group>/F" is checked as F): the first rule for subscribing that
//   is an allow rule covering F (every topic F matches, it matches: "a/#" covers "a/+/c") or a
//   deny rule overlapping F (some topic matches both) decides. Overlap, not cover, for deny:
//   the rules are not consulted again per message, so a subscription that could receive a
//   denied topic is refused (deny "t/secret" then allow "t/#" refuses "t/+" and "t/#").
// - No rule deciding is nullopt: the next authorizer is asked.
// - Wildcards follow MQTT: a leading '+' or '#' does not match a '$' topic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "auth/topic_match.h"

namespace starling::auth {

enum class RuleAction : uint8_t { Publish, Subscribe, All };

class ClientRules {
 public:
  // No rules: every check is nullopt.
  ClientRules() = default;

  // username: null for a client that sent none. Null with error set when rules is neither
  // form or a rule in it is malformed ("rule 2: unknown action 'read'").
  static std::optional<ClientRules> from_json(const nlohmann::json& rules,
                                              std::string_view client_id,
                                              std::optional<std::string_view> username,
                                              std::string& error);

  // topic is a topic name; qos 0-2.
  std::optional<bool> check_publish(std::string_view topic, uint8_t qos, bool retain) const;
  // filter is an MQTT filter; an invalid one is refused (false).
  std::optional<bool> check_subscribe(std::string_view filter) const;

  size_t size() const { return rules_.size(); }
  bool empty() const { return rules_.empty(); }

 private:
  enum class Retain : uint8_t { Any, Set, Unset };
  static constexpr uint8_t kAllQos = 0b111;

  struct Rule {
    TopicFilter filter;  // after substitution; "#" (unused) when denies_everything
    bool allow = false;
    RuleAction action = RuleAction::All;
    bool literal = false;            // "eq": compared as text, wildcards included
    bool denies_everything = false;  // a deny rule whose placeholder value did not fit
    uint8_t qos_mask = kAllQos;      // bit q: publishes at QoS q match
    Retain retain = Retain::Any;
  };

  // Adds the rule for one topic template; false with error set when it is malformed.
  bool add_rule(std::string_view topic, bool allow, RuleAction action, uint8_t qos_mask,
                Retain retain, std::string_view client_id, std::optional<std::string_view> username,
                std::string& error);
  bool parse_list(const nlohmann::json& rules, std::string_view client_id,
                  std::optional<std::string_view> username, std::string& error);
  bool parse_object(const nlohmann::json& rules, std::string_view client_id,
                    std::optional<std::string_view> username, std::string& error);

  std::vector<Rule> rules_;
};

// Whether some topic matches both filters (both valid per valid_filter).
bool filters_overlap(std::string_view a, std::string_view b);

}  // namespace starling::auth
