// libFuzzer target for the config parser: any text either loads or fails with a ConfigError
// that names a line inside the text; nothing else may escape (no crash, no other exception).
// The loaded config is loaded again from its own text to check the parser is deterministic.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

int count_lines(const std::string& text) {
  int lines = 1;
  for (char c : text)
    lines += c == '\n';
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    starling::config::Config first = starling::config::load_string(text, "fuzz.toml");
    starling::config::Config second = starling::config::load_string(text, "fuzz.toml");
    check(first.listeners == second.listeners);
    check(first.limits == second.limits);
    check(first.kafka == second.kafka);
  } catch (const starling::config::ConfigError& e) {
    check(e.file() == "fuzz.toml");
    // Line 0 is for errors about the whole file; anything else is a line of the text (or
    // just past its end, for an unterminated construct).
    check(e.line() >= 0 && e.line() <= count_lines(text) + 1);
    check(!e.reason().empty());
  }
  return 0;
}
