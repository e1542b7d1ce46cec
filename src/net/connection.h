// One client's TCP connection: reads bytes, cuts them into MQTT frames for its Client, and
// writes what the Client and its Session queued. Lives on one worker for its whole life.
#pragma once

#include <cstdint>
#include <string>

#include "broker/client.h"
#include "core/event_loop.h"

namespace starling::net {

class Worker;

class Connection final : public core::IoHandler, public broker::Transport {
 public:
  Connection(Worker& worker, int fd, uint64_t token, std::string peer);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  void on_io(uint32_t events) override;
  // Takes the session's waiting output and writes as much as the socket accepts.
  void flush();
  void tick(broker::Clock::time_point now);
  broker::Client& client() { return client_; }
  uint64_t token() const { return token_; }

  // broker::Transport
  void send(std::string_view bytes) override;
  void close() override;
  void pause_reading(bool paused) override;
  broker::Attachment attachment() const override;
  const std::string& peer() const override { return peer_; }

 private:
  void read_some();
  void process_input();
  // Hands every complete frame in data to the client; returns the bytes consumed.
  size_t consume_frames(std::string_view data);
  void write_some();
  void update_interest();
  void destroy();

  Worker& worker_;
  int fd_;
  const uint64_t token_;
  const std::string peer_;
  std::string rbuf_;
  size_t rpos_ = 0;
  std::string wbuf_;
  size_t wpos_ = 0;
  bool want_write_ = false;
  bool reading_paused_ = false;
  bool closing_ = false;
  bool destroyed_ = false;
  broker::Clock::time_point closing_since_{};
  broker::Client client_;
};

}  // namespace starling::net
