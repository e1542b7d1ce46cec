// MQTT over WebSocket (MQTT 5.0 section 6, RFC 6455): the HTTP/1.1 upgrade handshake, then
// wslay's framing. MQTT bytes are a stream across binary messages: a packet may span messages
// and a message may hold several packets, so message payloads go up as plain bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/layers/stream_layer.h"

struct wslay_event_context;  // wslay/wslay.h, kept out of this header
struct wslay_frame_context;

namespace starling::http {
struct Request;
class RequestParser;
}  // namespace starling::http

namespace starling::net {

struct WebSocketSettings {
  std::string path = "/mqtt";  // the request path (the query is ignored)
  // Origin values a browser may connect from (compared case-insensitively); empty: any. A
  // request without Origin (not from a browser) is always accepted.
  std::vector<std::string> allowed_origins;
  // Largest message accepted: the MQTT maximum packet size plus some slack. Bigger: close
  // 1009 and fail.
  uint64_t max_message_bytes = 1024 * 1024;
  size_t max_header_bytes = 8 * 1024;  // request line and headers; more: 431
};

// The answer to an upgrade request.
struct WebSocketUpgrade {
  bool accepted = false;
  int status = 0;           // 101, or the HTTP error status
  std::string response;     // the bytes to send: the 101 answer or the error (JSON body)
  std::string error;        // refused: why, for logs
  std::string subprotocol;  // accepted: "mqtt", "mqttv3.1", or empty when none was offered
};

// Checks an upgrade request that an HTTP server has parsed (WebSocket on the HTTP port): on
// acceptance, continue the connection with WebSocketLayer::accepted(settings).
WebSocketUpgrade answer_upgrade(const http::Request& request, const WebSocketSettings& settings);

// RFC 6455 section 4.2.2: base64(SHA-1(key + the protocol's GUID)).
std::string websocket_accept_key(std::string_view key);

class WebSocketLayer final : public StreamLayer {
 public:
  // Expects the HTTP upgrade request first, and answers it.
  explicit WebSocketLayer(WebSocketSettings settings);
  // Starts open: the upgrade request was read and answered by the HTTP server.
  static std::unique_ptr<WebSocketLayer> accepted(WebSocketSettings settings,
                                                  std::string subprotocol = {});
  ~WebSocketLayer() override;
  // wslay's callbacks hold this layer's address.
  WebSocketLayer(const WebSocketLayer&) = delete;
  WebSocketLayer& operator=(const WebSocketLayer&) = delete;

  // May append to `up` and still return false (data frames followed by a close frame in the
  // same input): hand `up` to the MQTT side before closing.
  bool on_input(std::string_view in, std::string& up, std::string& down) override;
  // One binary message per call.
  bool on_output(std::string_view out, std::string& down) override;
  bool established() const override { return events_ != nullptr; }
  const std::string& error() const override { return error_; }

  // Once established(): the subprotocol agreed on, empty when the client offered none.
  const std::string& subprotocol() const { return subprotocol_; }
  // The broker ends the connection: appends a close frame (1000) for the peer, when one may
  // still be sent.
  void close(std::string& down);

 private:
  struct Callbacks;
  friend struct Callbacks;

  bool open(std::string& down);
  bool read_frames(std::string_view in, std::string& up, std::string& down);
  bool fail(std::string reason);

  WebSocketSettings settings_;
  std::unique_ptr<http::RequestParser> parser_;  // until the upgrade request is in
  wslay_event_context* events_ = nullptr;        // after the upgrade: reads, control frames, close
  wslay_frame_context* frames_ = nullptr;  // after the upgrade: our data frames, without a copy
  // Where wslay's callbacks read from and write to during on_input/on_output.
  std::string_view input_;
  std::string* up_ = nullptr;
  std::string* down_ = nullptr;
  std::string early_output_;  // written before the upgrade completed
  uint64_t message_bytes_ = 0;
  bool data_frame_ = false;
  bool too_big_ = false;
  bool failed_ = false;
  std::string subprotocol_;
  std::string error_;
};

}  // namespace starling::net
