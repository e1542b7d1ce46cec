// Topic access control from a Mosquitto acl_file, so a Mosquitto user migrates by pointing at
// the same file.
//
// Format (one directive a line; '#' comments and blank lines ignored; leading and trailing
// whitespace trimmed):
//   user <name>                                   starts <name>'s section (rest of the line;
//                                                 several sections for one name merge)
//   topic [read|write|readwrite|deny] <filter>    a rule for the current user; before any
//                                                 `user` line, for anonymous clients
//   pattern [read|write|readwrite|deny] <filter>  a rule for every client, wherever it appears;
//                                                 %u is the username, %c the client id
// Without an access word the rule is readwrite. The filter is the rest of the line, so it may
// hold spaces. `topic` filters are literal (%u/%c are substituted only in `pattern` lines).
//
// Semantics:
// - A client gets its own user section's rules (anonymous clients: the rules before the first
//   `user` line; a username without a section: none) plus every pattern.
// - deny wins: a topic matched by any deny rule is neither readable nor writable.
// - publish to T: some write/readwrite rule matches T and no deny rule matches T.
// - receive on T: the same with read/readwrite rules.
// - subscribe to F: some read/readwrite rule covers F (matches every topic F can match: "a/#"
//   covers "a/+/c", "a/+" does not cover "a/#") and no deny rule covers F. A deny rule that
//   overlaps only part of F does not refuse the subscription; the broker enforces it per
//   message through can_read. "$share/<group>/F" is checked as F.
// - Matching is MQTT's: '+' one level, '#' the rest including the parent, and a leading
//   wildcard does not match a '$' topic (rule "#" gives no access to $SYS; write "$SYS/#").
// - A pattern with %u never applies to a client without a username or with an empty one; a
//   pattern with %u or %c does not apply when the substituted value is empty or contains '+',
//   '#', '/' or NUL, since it could otherwise widen the rule (mosquitto likewise refuses such
//   ids for patterns).
//
// An AclFile is immutable after loading (share it as shared_ptr<const AclFile> and swap on
// reload); a ClientAcl holds its own copies of the rules and outlives the file.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/load_error.h"
#include "auth/topic_match.h"

namespace starling::auth {

enum class AclAccess { Read, Write, ReadWrite, Deny };

// One client's rules with %u/%c already substituted: what the broker consults per message.
class ClientAcl {
 public:
  // Everything allowed, '$' topics included: for a broker without an ACL file.
  static ClientAcl allow_all();

  bool can_publish(std::string_view topic) const;
  bool can_read(std::string_view topic) const;
  // filter must be a valid MQTT filter (otherwise false).
  bool can_subscribe(std::string_view filter) const;
  // can_read is true for every topic not starting with '$' (a read "#" rule and no deny rule),
  // so delivery can skip the check for those. can_read already takes this fast path itself.
  bool reads_everything() const { return allow_all_ || reads_everything_; }

 private:
  friend class AclFile;

  bool allow_all_ = false;
  bool reads_everything_ = false;
  bool writes_everything_ = false;
  std::vector<TopicFilter> read_;
  std::vector<TopicFilter> write_;
  std::vector<TopicFilter> deny_;
};

class AclFile {
 public:
  // Throws LoadError "path:line: reason", or "path: reason" when the file cannot be read.
  static AclFile load(const std::string& path);
  // The same from text; name stands for the path in messages.
  static AclFile parse(std::string_view text, std::string_view name);

  // username: null for a client that sent none.
  ClientAcl compile_for(std::optional<std::string_view> username, std::string_view client_id) const;

 private:
  struct Rule {
    AclAccess access;
    std::string filter;
  };

  std::vector<Rule> anonymous_;
  std::map<std::string, std::vector<Rule>, std::less<>> users_;
  std::vector<Rule> patterns_;
};

}  // namespace starling::auth
