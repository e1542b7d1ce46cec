// `starling passwd`: edits a password file like mosquitto_passwd does.
//   starling passwd [-c] [-D] [-b] [-I iterations] [--scram] FILE USER [PASSWORD]
// -c creates (or overwrites) FILE, -D deletes USER, -b takes PASSWORD from the command line
// (otherwise it is read from stdin: twice without echo on a terminal, one line otherwise),
// -I sets the iteration count, --scram writes a $scram-sha-256$ hash (usable for MQTT 5
// SCRAM-SHA-256 authentication) instead of mosquitto's $7$. Other lines, comments included,
// are kept in order; the file is replaced atomically with mode 0600.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace starling::app {

struct PasswdOptions {
  bool help = false;  // -h/--help: print the usage, nothing else
  bool create = false;
  bool remove = false;
  bool batch = false;
  bool scram = false;
  uint32_t iterations = 0;  // 0: the hash kind's default
  std::string file;
  std::string user;
  std::optional<std::string> password;  // only with -b
};

// argv[0] is the subcommand's name ("passwd"), options and operands follow. Throws
// std::invalid_argument with a message for the user.
PasswdOptions parse_passwd_args(int argc, char** argv);

// Rejects what the password file cannot hold: empty, ':', a leading '#', line breaks.
// Throws std::invalid_argument.
void check_passwd_username(std::string_view user);

// The file text with USER's line replaced by "user:hash" in place (appended when absent), or
// removed when hash is null. Other lines stay as they are; a repeated USER line is dropped.
// Throws std::invalid_argument when removing a user the text does not have.
std::string edit_password_text(std::string_view text, std::string_view user,
                               const std::optional<std::string>& hash);

// Everything but reading the password: loads FILE (unless -c), edits it, and writes it
// atomically. password is ignored with -D. Throws std::runtime_error or
// std::invalid_argument with a message for the user.
void update_password_file(const PasswdOptions& options, std::string_view password);

// The whole subcommand; returns the exit code (0, or 1 after printing the error to stderr).
int run_passwd_command(int argc, char** argv);

}  // namespace starling::app
