// The non-blocking socket write both connection kinds use (MQTT and HTTP).
#pragma once

#include <cstddef>
#include <string>

namespace starling::core {

enum class SendResult {
  Done,        // everything from pos on was sent
  WouldBlock,  // the socket buffer is full: wait for EPOLLOUT
  Failed,      // the peer is gone or the socket broke: close the connection
};

// Sends buf from pos on, advancing pos, until done or the socket is full (the caller counts
// the bytes: pos moved by that many).
SendResult send_pending(int fd, const std::string& buf, size_t& pos);

}  // namespace starling::core
