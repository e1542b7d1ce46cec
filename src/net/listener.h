// A listening TCP socket on one worker's loop. Accepted sockets go to the Server, which spreads
// them over the workers.
#pragma once

#include <functional>
#include <string>

#include "config/config.h"
#include "core/event_loop.h"

namespace starling::net {

class Listener final : public core::IoHandler {
 public:
  using AcceptHandler = std::function<void(int fd, std::string peer)>;

  // Binds and listens; throws std::runtime_error naming the address on failure. Accepted
  // sockets go to on_accept.
  Listener(const config::Listener& config, AcceptHandler on_accept);
  ~Listener() override;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void attach(core::EventLoop& loop);
  void on_io(uint32_t events) override;
  const config::Listener& config() const { return config_; }

 private:
  config::Listener config_;
  AcceptHandler on_accept_;
  int fd_ = -1;
};

}  // namespace starling::net
