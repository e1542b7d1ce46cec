// Places in the config file: every error names one, and so does every rule, for errors found
// after loading (a TLS certificate that does not load, a Kafka rule without a bootstrap).
#pragma once

#include <stdexcept>
#include <string>

namespace starling::config {

// Where something was declared in the file (0: not in the file). Never part of a comparison:
// moving a table in the file changes nothing, so a reload does not see a change.
struct SourceLine {
  int value = 0;
  bool operator==(const SourceLine&) const { return true; }
};

// A config error with the place it was found. what() is "file:line: reason".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, int line, const std::string& reason)
      : std::runtime_error(file + ":" + std::to_string(line) + ": " + reason),
        file_(file),
        line_(line),
        reason_(reason) {}
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string file_;
  int line_;
  std::string reason_;
};

}  // namespace starling::config
