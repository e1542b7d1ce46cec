#include "auth/password_file.h"

#include <stdexcept>

namespace starling::auth {
namespace {

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

PasswordFile PasswordFile::load(const std::string& path) {
  return parse(read_file_text(path), path);
}

PasswordFile PasswordFile::parse(std::string_view text, std::string_view name) {
  PasswordFile file;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim_right(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (blank(line) || line.front() == '#') continue;

    auto fail = [&](const std::string& reason) {
      throw LoadError(std::string(name) + ":" + std::to_string(line_number) + ": " + reason);
    };
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) fail("missing ':' between user and hash");
    const std::string_view user = line.substr(0, colon);
    if (user.empty()) fail("empty user name");
    if (file.users_.contains(user)) fail("duplicate user '" + std::string(user) + "'");
    try {
      file.users_.emplace(std::string(user), PasswordHash::parse(line.substr(colon + 1)));
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
  return file;
}

const PasswordHash* PasswordFile::lookup(std::string_view username) const {
  const auto it = users_.find(username);
  return it == users_.end() ? nullptr : &it->second;
}

bool PasswordFile::check(std::string_view username, std::string_view password) const {
  const PasswordHash* hash = lookup(username);
  return hash != nullptr && hash->verify(password);
}

std::optional<ScramCredentials> PasswordFile::scram_credentials(std::string_view username) const {
  const PasswordHash* hash = lookup(username);
  return hash == nullptr ? std::nullopt : hash->scram_credentials();
}

}  // namespace starling::auth
