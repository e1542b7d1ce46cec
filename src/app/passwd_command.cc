#include "app/passwd_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "auth/password_hash.h"
#include "store/durable_directory.h"

namespace starling::app {
namespace {

constexpr std::string_view kUsage =
    "usage: starling passwd [-c] [-D] [-b] [-I iterations] [--scram] FILE USER [PASSWORD]";

std::invalid_argument usage_error(const std::string& reason) {
  return std::invalid_argument(reason + "\n" + std::string(kUsage));
}

uint32_t parse_iterations(std::string_view text) {
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 ||
      value > auth::kMaxHashIterations) {
    throw usage_error("-I needs an iteration count from 1 to " +
                      std::to_string(auth::kMaxHashIterations));
  }
  return value;
}

std::string system_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) throw std::runtime_error(path + " does not exist (use -c to create it)");
    throw std::runtime_error(system_error(path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return text.str();
}

// A reader of the file sees the old or the new version, never a partial one; a power cut after
// it returns leaves the new one.
void write_atomically(const std::string& path, std::string_view content) {
  std::string temp = path + ".XXXXXX";
  const int fd = mkstemp(temp.data());
  if (fd < 0) throw std::runtime_error(system_error("cannot create a file next to " + path));
  auto fail = [&](const std::string& what) {
    const std::string message = system_error(what);
    ::close(fd);
    ::unlink(temp.c_str());
    throw std::runtime_error(message);
  };
  if (::fchmod(fd, 0600) != 0) fail(temp);
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(temp);
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail(temp);
  if (::close(fd) != 0) {
    const std::string message = system_error(temp);
    ::unlink(temp.c_str());
    throw std::runtime_error(message);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string message = system_error(path);
    ::unlink(temp.c_str());
    throw std::runtime_error(message);
  }
  // The rename is durable only with its directory (a power cut could bring the old file back).
  store::sync_directory(std::filesystem::absolute(path).parent_path());
}

void strip_line_end(std::string& line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
}

// Turns echo off for its lifetime, restoring the terminal even when reading throws.
class NoEcho {
 public:
  NoEcho() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~NoEcho() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

std::string prompt_password(const char* prompt) {
  std::cerr << prompt << std::flush;
  std::string line;
  {
    NoEcho no_echo;
    if (!std::getline(std::cin, line)) {
      std::cerr << "\n";
      throw std::runtime_error("no password read");
    }
  }
  std::cerr << "\n";
  strip_line_end(line);
  return line;
}

std::string read_password() {
  if (isatty(STDIN_FILENO)) {
    const std::string first = prompt_password("Password: ");
    const std::string second = prompt_password("Reenter password: ");
    if (first != second) throw std::runtime_error("passwords do not match");
    return first;
  }
  std::string line;
  if (!std::getline(std::cin, line)) throw std::runtime_error("no password on stdin");
  strip_line_end(line);
  return line;
}

}  // namespace

PasswdOptions parse_passwd_args(int argc, char** argv) {
  PasswdOptions options;
  std::vector<std::string> operands;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      operands.emplace_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-c") {
      options.create = true;
    } else if (arg == "-D") {
      options.remove = true;
    } else if (arg == "-b") {
      options.batch = true;
    } else if (arg == "--scram") {
      options.scram = true;
    } else if (arg == "-I") {
      if (i + 1 == argc) throw usage_error("-I needs a value");
      options.iterations = parse_iterations(argv[++i]);
    } else if (arg == "-h" || arg == "--help") {
      options.help = true;
      return options;
    } else {
      throw usage_error("unknown option " + std::string(arg));
    }
  }
  if (options.create && options.remove) throw usage_error("-c and -D cannot be combined");
  const size_t wanted = options.batch && !options.remove ? 3 : 2;
  if (operands.size() != wanted) {
    if (wanted == 3) throw usage_error("-b needs FILE, USER and PASSWORD");
    throw usage_error(operands.size() == 3 && !options.remove
                          ? "a password on the command line needs -b"
                          : "expected FILE and USER");
  }
  options.file = operands[0];
  options.user = operands[1];
  if (wanted == 3) options.password = operands[2];
  check_passwd_username(options.user);
  return options;
}

void check_passwd_username(std::string_view user) {
  if (user.empty()) throw std::invalid_argument("empty user name");
  if (user.find(':') != std::string_view::npos) {
    throw std::invalid_argument("user name must not contain ':'");
  }
  if (user.front() == '#') throw std::invalid_argument("user name must not start with '#'");
  if (user.find_first_of("\r\n") != std::string_view::npos) {
    throw std::invalid_argument("user name must not contain line breaks");
  }
}

std::string edit_password_text(std::string_view text, std::string_view user,
                               const std::optional<std::string>& hash) {
  const std::string new_line = hash ? std::string(user) + ":" + *hash : std::string();
  std::string out;
  bool found = false;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const size_t colon = line.find(':');
    const bool is_user =
        !line.starts_with('#') && colon != std::string_view::npos && line.substr(0, colon) == user;
    if (!is_user) {
      out.append(line);
      out += '\n';
      continue;
    }
    if (hash && !found) {
      out += new_line;
      out += '\n';
    }
    found = true;
  }
  if (!found) {
    if (!hash) throw std::invalid_argument("user '" + std::string(user) + "' not found");
    out += new_line;
    out += '\n';
  }
  return out;
}

namespace {

// Reads FILE unless -c: done before asking for a password, so a wrong path fails first.
std::string existing_text(const PasswdOptions& options) {
  return options.create ? std::string() : read_file(options.file);
}

void edit_password_file(const PasswdOptions& options, std::string_view old_text,
                        std::string_view password) {
  check_passwd_username(options.user);
  std::optional<std::string> hash;
  if (!options.remove) {
    if (password.empty()) throw std::invalid_argument("empty password");
    const auth::HashKind kind =
        options.scram ? auth::HashKind::ScramSha256 : auth::HashKind::Pbkdf2Sha512;
    hash = auth::PasswordHash::create(password, kind, options.iterations).to_string();
  }
  write_atomically(options.file, edit_password_text(old_text, options.user, hash));
}

}  // namespace

void update_password_file(const PasswdOptions& options, std::string_view password) {
  edit_password_file(options, existing_text(options), password);
}

int run_passwd_command(int argc, char** argv) {
  try {
    const PasswdOptions options = parse_passwd_args(argc, argv);
    if (options.help) {
      std::cout << kUsage << "\n";
      return 0;
    }
    const std::string old_text = existing_text(options);
    std::string password;
    if (!options.remove) password = options.password ? *options.password : read_password();
    edit_password_file(options, old_text, password);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "starling passwd: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace starling::app
