// Where a connection lives, as the broker knows it: no socket, just its loop and its token there.
#pragma once

#include <cstdint>

namespace starling::core {
class EventLoop;
}

namespace starling::broker {

// Where the connection attached to a session lives: its loop and its token on that loop.
struct Attachment {
  core::EventLoop* loop = nullptr;
  uint64_t token = 0;
  explicit operator bool() const { return loop != nullptr; }
  bool operator==(const Attachment&) const = default;
};

}  // namespace starling::broker
