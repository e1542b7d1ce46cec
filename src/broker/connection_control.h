// What the broker may ask of a connection it does not own: the net layer implements it, so the
// broker never touches sockets.
#pragma once

#include <cstdint>

#include "broker/session.h"

namespace starling::broker {

class ConnectionControl {
 public:
  virtual ~ConnectionControl() = default;
  // Close the connection with a DISCONNECT of this reason (5.0) on its own loop.
  virtual void kick(Attachment connection, uint8_t reason_code) = 0;
  // A publisher paused for a full receiver may read again.
  virtual void resume_reading(Attachment connection) = 0;
};

// Set once at start-up by the net layer.
void set_connection_control(ConnectionControl* control);
ConnectionControl* connection_control();

}  // namespace starling::broker
