// Where the broker's log lines go and how they look: stdout with a timestamp, or, when stdout
// is connected to the journal, lines that carry their syslog priority for journald.
#pragma once

#include <string>

namespace starling::app {

// Sets the default logger's format. Under systemd (JOURNAL_STREAM names stdout's device and
// inode) each line starts with "<N>", the priority journald files it under (so `journalctl -p
// warning` works), and has no timestamp (the journal keeps its own).
void configure_logging();

// True when JOURNAL_STREAM ("device:inode") names the file descriptor fd.
bool is_journal_stream(int fd, const std::string& journal_stream);

}  // namespace starling::app
