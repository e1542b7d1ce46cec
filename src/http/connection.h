// One HTTP/1.1 connection on a worker loop: reads requests (keep-alive, pipelining), hands
// each to the Api, and writes the responses in request order, including those that complete
// later (a publish waiting for the store). Never blocks: the socket is non-blocking and a
// deferred response comes back as a task posted to this loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "core/event_loop.h"
#include "http/parser/request_parser.h"
#include "http/response.h"

namespace starling::http {

struct LoopSite;

class Connection final : public core::IoHandler {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(LoopSite& site, int fd, uint64_t token, std::string peer);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  void on_io(uint32_t events) override;
  // A deferred response (see Api::defer) is ready.
  void complete(uint64_t seq, Response&& response);
  // Idle, request and close timeouts; called a few times a second.
  void tick(Clock::time_point now);
  // Closes at once (shutdown).
  void destroy();

  uint64_t token() const { return token_; }
  const std::string& peer() const { return peer_; }
  bool loopback() const { return loopback_; }
  LoopSite& site() { return site_; }

 private:
  // A request whose response is not written yet, in request order.
  struct Slot {
    uint64_t seq = 0;
    bool ready = false;
    bool keep_alive = true;
    bool head = false;
    unsigned version_minor = 1;
    Clock::time_point started{};
    std::string bytes;  // the serialized response once ready
  };

  void read_some();
  void process_input();
  // Parses requests from data while the pipeline has room; returns the bytes consumed.
  size_t consume(std::string_view data);
  void handle(Request&& request);
  // GET with Upgrade: websocket: handed to MQTT (or refused). True when it was one.
  bool upgrade_to_websocket(const Request& request);
  void fail(int status, const std::string& message);
  void finish(Slot& slot, Response&& response);
  void flush_ready();
  void write_some();
  void update_interest();
  bool backlogged() const;

  LoopSite& site_;
  int fd_;
  const uint64_t token_;
  const std::string peer_;
  const bool loopback_;
  RequestParser parser_;
  std::string rbuf_;
  std::string wbuf_;
  size_t wpos_ = 0;
  std::deque<Slot> slots_;  // responses not yet in wbuf_, oldest first
  uint64_t next_seq_ = 1;
  bool want_write_ = false;
  bool reading_paused_ = false;
  bool no_more_requests_ = false;  // a request asked to close, or the stream is unusable
  bool closing_ = false;           // close once wbuf_ is written
  bool destroyed_ = false;
  bool batching_ = false;  // reading input: the caller writes once at the end
  Clock::time_point last_activity_;
  Clock::time_point request_started_{};
  Clock::time_point closing_since_{};
};

}  // namespace starling::http
