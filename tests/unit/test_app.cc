// The process's service-manager side: the watchdog pings systemd only while the broker's loops
// answer (a stand-in NOTIFY_SOCKET records what it is told), and JOURNAL_STREAM is matched
// against the right stream.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "app/logging.h"
#include "app/service_manager.h"
#include "app/watchdog.h"

namespace starling::app {
namespace {

// A datagram socket in NOTIFY_SOCKET, and WATCHDOG_USEC set, for the test's lifetime.
class FakeServiceManager {
 public:
  explicit FakeServiceManager(const char* watchdog_usec) {
    char dir_template[] = "/tmp/starling-notify-XXXXXX";
    dir_ = mkdtemp(dir_template);
    path_ = dir_ + "/notify";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path_.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    if (watchdog_usec) setenv("WATCHDOG_USEC", watchdog_usec, 1);
  }
  ~FakeServiceManager() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  // Everything sent so far.
  std::vector<std::string> received() {
    std::vector<std::string> messages;
    char buf[1024];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0) break;
      messages.emplace_back(buf, static_cast<size_t>(n));
    }
    return messages;
  }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

// Blocks SIGUSR2 in this thread, so the watchdog's wait can take it.
sigset_t block_sigusr2() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

TEST(Watchdog, PingsOnlyWhileTheLoopsAnswer) {
  FakeServiceManager manager("2000");  // 1 ms between pings: the test waits on counts only
  ServiceManager service;
  ASSERT_TRUE(service.watchdog_enabled());
  EXPECT_EQ(service.watchdog_interval().count(), 1000);
  // alive() answers yes, yes, no, no, yes; then a signal ends the wait.
  const std::vector<bool> answers = {true, true, false, false, true};
  size_t calls = 0;
  const sigset_t signals = block_sigusr2();
  Watchdog watchdog(service, [&] {
    const bool alive = answers[calls++];
    if (calls == answers.size()) raise(SIGUSR2);  // pending: the wait returns it next
    return alive;
  });
  EXPECT_EQ(watchdog.wait_signal(signals), SIGUSR2);
  EXPECT_EQ(calls, answers.size());
  EXPECT_EQ(manager.received(),
            (std::vector<std::string>{"WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"}));
}

TEST(Watchdog, WithoutWatchdogUsecOnlySignals) {
  FakeServiceManager manager(nullptr);
  ServiceManager service;
  EXPECT_FALSE(service.watchdog_enabled());
  const sigset_t signals = block_sigusr2();
  bool asked = false;
  Watchdog watchdog(service, [&] {
    asked = true;
    return true;
  });
  raise(SIGUSR2);
  EXPECT_EQ(watchdog.wait_signal(signals), SIGUSR2);
  EXPECT_FALSE(asked);
  service.ready("serving");
  service.reloading();
  service.stopping();
  EXPECT_EQ(manager.received(),
            (std::vector<std::string>{"READY=1\nSTATUS=serving",
                                      "RELOADING=1\nSTATUS=reloading the configuration",
                                      "STOPPING=1\nSTATUS=shutting down"}));
}

TEST(Logging, JournalStreamNamesOneStream) {
  char path[] = "/tmp/starling-journal-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  EXPECT_TRUE(is_journal_stream(fd, mine));
  EXPECT_FALSE(
      is_journal_stream(fd, std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)));
  EXPECT_FALSE(is_journal_stream(fd, ""));
  EXPECT_FALSE(is_journal_stream(fd, std::to_string(st.st_dev)));
  EXPECT_FALSE(is_journal_stream(fd, mine + "x"));
  EXPECT_FALSE(is_journal_stream(fd, ":" + std::to_string(st.st_ino)));
  close(fd);
  unlink(path);
}

}  // namespace
}  // namespace starling::app
