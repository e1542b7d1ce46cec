// libFuzzer target for src/auth. The input goes whole to the ACL parser and the password file
// parser; its lines are also tried as filters and topics against the ACL matcher (cross-checked
// with the codec's MQTT matcher) and, split at the first newline, as a SCRAM client-first and
// client-final. Broken invariants trap.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/acl.h"
#include "auth/password_file.h"
#include "auth/scram.h"
#include "auth/topic_match.h"
#include "core/base64.h"
#include "fuzz_support.h"
#include "mqtt/topic.h"

namespace {

using namespace starling::auth;

using starling::fuzz::check;
using starling::fuzz::lines_of;

bool plain_valid_filter(std::string_view s) {
  return valid_filter(s) && starling::mqtt::valid_topic_filter(s) && !s.starts_with("$share/");
}

void fuzz_matcher(const std::vector<std::string_view>& lines) {
  for (size_t i = 0; i + 2 < lines.size(); ++i) {
    const std::string_view wide = lines[i], narrow = lines[i + 1], topic = lines[i + 2];
    if (!plain_valid_filter(wide) || !plain_valid_filter(narrow)) continue;
    const TopicFilter w(wide), n(narrow);
    check(w.covers(w));
    if (!starling::mqtt::valid_topic_name(topic)) continue;
    check(w.matches(topic) == starling::mqtt::topic_matches(wide, topic));
    if (w.covers(n) && n.matches(topic)) check(w.matches(topic));
  }
}

void fuzz_acl(std::string_view input, const std::vector<std::string_view>& lines) {
  std::optional<AclFile> acl;
  try {
    acl.emplace(AclFile::parse(input, "fuzz"));
  } catch (const LoadError&) {
    return;
  }
  const ClientAcl clients[] = {acl->compile_for("user", "client"),
                               acl->compile_for(std::nullopt, "client"),
                               acl->compile_for("a/+", "#")};
  for (const ClientAcl& client : clients) {
    for (std::string_view line : lines) {
      const bool subscribable = client.can_subscribe(line);
      const bool readable = client.can_read(line);
      client.can_publish(line);
      // A wildcard-free filter is a single topic: subscribing to it and reading it agree.
      if (plain_valid_filter(line) && line.find_first_of("+#") == std::string_view::npos) {
        check(subscribable == readable);
      }
      if (client.reads_everything() && !line.starts_with('$')) check(readable);
    }
  }
}

void fuzz_password_file(std::string_view input) {
  try {
    const PasswordFile file = PasswordFile::parse(input, "fuzz");
    (void)file.check("user", "pass");
  } catch (const LoadError&) {
  }
  // Each line on its own as a hash: what parses writes back to something that parses the same.
  for (std::string_view line : lines_of(input, 16)) {
    try {
      const PasswordHash hash = PasswordHash::parse(line);
      const std::string text = hash.to_string();
      check(PasswordHash::parse(text).to_string() == text);
      if (hash.iterations() <= 100) (void)hash.verify("pass");
    } catch (const std::invalid_argument&) {
    }
  }
}

void fuzz_scram(std::string_view input) {
  // RFC 7677's user, so the seed with its exchange reaches a successful finish.
  static const ScramCredentials credentials = make_scram_credentials(
      "pencil", *starling::core::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  ScramServer server(
      [](std::string_view user) -> std::optional<ScramCredentials> {
        if (user == "user") return credentials;
        return std::nullopt;
      },
      [] { return std::string("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"); });
  const size_t newline = input.find('\n');
  const ScramStep first = server.start(input.substr(0, newline));
  if (!first.ok() || newline == std::string_view::npos) return;
  check(first.message.starts_with("r="));
  const ScramStep last = server.finish(input.substr(newline + 1));
  if (last.ok()) check(last.username == "user" && last.message.starts_with("v="));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> lines = lines_of(input, 64);
  fuzz_matcher(lines);
  fuzz_acl(input, lines);
  fuzz_password_file(input);
  fuzz_scram(input);
  return 0;
}
