// One client's connection: reads bytes, passes them up through the listener's stream layers
// (PROXY header, TLS, WebSocket; none on plain TCP), cuts them into MQTT frames for its Client,
// and writes what the Client and its Session queued back down the layers. Lives on one worker
// for its whole life.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/client.h"
#include "core/event_loop.h"
#include "core/peer_address.h"
#include "core/token_bucket.h"
#include "net/layers.h"
#include "net/listener_context.h"

namespace starling::net {

class Worker;
class ProxyLayer;
class TlsLayer;
class WebSocketLayer;

class Connection final : public core::IoHandler, public broker::Transport {
 public:
  // The socket was admitted by Admission::admit_socket for listener (released here).
  Connection(Worker& worker, int fd, uint64_t token, std::string peer,
             std::shared_ptr<ListenerContext> listener);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Builds the listener's layers and starts reading. pre_layers: layers already set up by
  // someone else (a WebSocket upgraded on the HTTP port), replacing the listener's own;
  // greeting: bytes for the socket before anything else (its 101 answer).
  void start(LayerStack pre_layers = {}, std::string greeting = {});
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
  void resume_input() override;
  broker::Attachment attachment() const override;
  core::PeerAddress peer_address() const override { return peer_; }
  const std::string& listener_name() const override { return listener_->config.name; }
  std::optional<std::string> certificate_username() const override;

 private:
  void read_some();
  void process_input();
  // Hands every complete frame in data to the client; returns the bytes consumed.
  size_t consume_frames(std::string_view data);
  void write_some();
  void update_interest();
  void destroy();
  // Closing with the output written: half-close, then read and drop the peer's input for a
  // bounded time before destroy(), so a reset cannot destroy our last packet on its way.
  void linger();
  void drop_input();
  // Bytes from the socket: up through the layers, then into frames.
  void on_socket_bytes(std::string_view bytes);
  // Encodes bytes a layer produced for the peer through the layers below it.
  void send_below(size_t layer, std::string_view bytes);
  // Moves the write buffer down through every layer into lower_buf_.
  void encode_output();
  // Once the PROXY header is in (or at once without one): the per-address limits.
  bool admit_address();
  // A layer cannot go on: count it, send what it answered, close.
  void layer_failed(size_t layer);
  // Closing: the layers' own goodbyes (WebSocket close frame, TLS close_notify).
  void say_goodbye();
  bool publish_allowed(broker::Clock::time_point now);
  void release_idle_buffers();
  // Unwritten bytes past the point where the client's input waits for its output.
  bool output_backlogged() const;
  // Bytes taken for the socket and not written yet (before and after the layers).
  size_t unwritten() const {
    return (buffers_ ? buffers_->write.size() - buffers_->write_pos : 0) +
           (layered_ ? layered_->lower_buf.size() - layered_->lower_pos : 0);
  }
  ProxyLayer* proxy() const { return layered_ ? layered_->layers.proxy() : nullptr; }
  TlsLayer* tls() const { return layered_ ? layered_->layers.tls() : nullptr; }
  WebSocketLayer* websocket() const { return layered_ ? layered_->layers.websocket() : nullptr; }

  Worker& worker_;
  const uint64_t token_;
  core::PeerAddress peer_;  // the socket's peer, or the PROXY header's source
  int fd_;                  // next to peer_: no padding
  std::shared_ptr<ListenerContext> listener_;
  // The stream layers and their output, on listeners that have any (plain TCP has none, and
  // an idle plain connection should cost as little as possible).
  struct Layered {
    LayerStack layers;
    std::string lower_buf;  // encoded bytes for the socket
    size_t lower_pos = 0;
    bool goodbye_sent = false;
  };
  std::unique_ptr<Layered> layered_;
  broker::Clock::time_point last_write_progress_{};
  broker::Clock::time_point state_since_{};  // when closing_, then lingering_, began
  // [limits] max_publish_rate: made at the first PUBLISH when a rate is set.
  std::unique_ptr<core::TokenBucket> publishes_;
  // Both buffers are given back when the connection is idle (see tick).
  // Read and write buffers, made when first needed and given back when both are empty (an
  // idle connection holds none: 64 bytes less in each).
  struct Buffers {
    std::string read;  // the start of a frame not complete yet
    std::string write;
    size_t write_pos = 0;
  };
  std::unique_ptr<Buffers> buffers_;
  Buffers& buffers() {
    if (!buffers_) buffers_ = std::make_unique<Buffers>();
    return *buffers_;
  }
  bool has_read_input() const { return buffers_ && !buffers_->read.empty(); }
  uint32_t lingered_bytes_ = 0;
  bool address_checked_ = false;
  bool address_counted_ = false;  // by Admission::admit_address: released when this one goes
  bool backlog_paused_ = false;   // output_backlogged(): resumed when the output is written
  bool rate_paused_ = false;      // over [limits] max_publish_rate: resumed by tick
  bool want_write_ = false;
  bool reading_paused_ = false;
  bool closing_ = false;
  bool destroyed_ = false;
  bool lingering_ = false;
  broker::Client client_;
};

}  // namespace starling::net
