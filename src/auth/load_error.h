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

}  // namespace starling::auth
