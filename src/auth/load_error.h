// The error the auth file loaders throw: what() is "file:line: reason", ready for a log line or
// for `--check-config` output.
#pragma once

#include <stdexcept>
#include <string>

namespace starling::auth {

class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A whole file's text. Throws LoadError "path: reason" when it cannot be read.
std::string read_file_text(const std::string& path);

}  // namespace starling::auth
