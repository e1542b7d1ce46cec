#include "auth/load_error.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace starling::auth {

std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LoadError(path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw LoadError(path + ": read failed");
  return text.str();
}

}  // namespace starling::auth
