// A unit test that cannot run here (a tool or a file missing) skips, except in CI: there
// scripts/deps.sh installed everything, so the skip would hide a gap and fails instead. Every
// skip is also written to $STARLING_SKIP_LOG, which scripts/test.sh counts.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace starling::test {

inline void log_skip(const std::string& reason) {
  if (const char* log = std::getenv("STARLING_SKIP_LOG")) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::ofstream(log, std::ios::app)
        << info->test_suite_name() << "." << info->name() << ": " << reason << "\n";
  }
}

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0';
}

}  // namespace starling::test

// Use as a statement in a TEST body: returns from it (skipped, or failed in CI).
#define STARLING_SKIP_OR_FAIL_IN_CI(reason)                                               \
  do {                                                                                    \
    const std::string starling_skip_reason = (reason);                                    \
    ::starling::test::log_skip(starling_skip_reason);                                     \
    if (::starling::test::in_ci()) {                                                      \
      FAIL() << "skipped in CI, where every tool is installed: " << starling_skip_reason; \
    }                                                                                     \
    GTEST_SKIP() << starling_skip_reason;                                                 \
  } while (false)
