#include "app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace starling::app {

namespace {

// The sd-daemon(3) priority prefix of a level: "<3>" is an error, "<6>" information.
const char* priority_prefix(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "<7>";
    case spdlog::level::warn:
      return "<4>";
    case spdlog::level::err:
      return "<3>";
    case spdlog::level::critical:
      return "<2>";
    default:
      return "<6>";
  }
}

// "%*" in a pattern: the line's priority prefix.
class JournalPriority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
              spdlog::memory_buf_t& dest) override {
    const char* prefix = priority_prefix(msg.level);
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriority>();
  }
};

}  // namespace

bool is_journal_stream(int fd, const std::string& journal_stream) {
  const size_t colon = journal_stream.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  char* end = nullptr;
  const unsigned long long device = std::strtoull(journal_stream.c_str(), &end, 10);
  if (end != journal_stream.c_str() + colon) return false;
  const char* inode_text = journal_stream.c_str() + colon + 1;
  const unsigned long long inode = std::strtoull(inode_text, &end, 10);
  if (end == inode_text || *end != '\0') return false;
  return device == static_cast<unsigned long long>(st.st_dev) &&
         inode == static_cast<unsigned long long>(st.st_ino);
}

void configure_logging() {
  const char* journal_stream = std::getenv("JOURNAL_STREAM");
  if (journal_stream != nullptr && is_journal_stream(STDOUT_FILENO, journal_stream)) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalPriority>('*').set_pattern("%*%l %v");
    spdlog::set_formatter(std::move(formatter));
    return;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

}  // namespace starling::app
