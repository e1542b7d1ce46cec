#include "net/layers/websocket.h"

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/base64.h"
#include "core/text.h"
#include "http/parser/request_parser.h"
#include "http/parser/status.h"
#include "http/parser/url.h"

namespace starling::net {

namespace {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// The MQTT side writes nothing before CONNECT; this only guards against a runaway writer.
constexpr size_t kMaxEarlyOutput = 1024 * 1024;

using core::iequals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The comma-separated tokens of every header with this (lower-case) name, in order: a client
// may send a list header on several lines.
std::vector<std::string_view> header_tokens(const http::Request& request, std::string_view name) {
  std::vector<std::string_view> tokens;
  for (const auto& [field, value] : request.headers) {
    if (field != name) continue;
    std::string_view rest = value;
    for (;;) {
      const size_t comma = rest.find(',');
      std::string_view token = trim(rest.substr(0, comma));
      if (!token.empty()) tokens.push_back(token);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return tokens;
}

bool has_token(const http::Request& request, std::string_view name, std::string_view token) {
  const auto tokens = header_tokens(request, name);
  return std::any_of(tokens.begin(), tokens.end(),
                     [&](std::string_view t) { return iequals(t, token); });
}

void append_json_string(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

// A refusal: a small HTTP response with the JSON error body, after which the connection closes.
WebSocketUpgrade refuse(int status, std::string message, std::string_view extra_headers = {}) {
  std::string body = "{\"error\":\"";
  body += http::error_code(status);
  body += "\",\"message\":";
  append_json_string(message, body);
  body += "}";

  WebSocketUpgrade answer;
  answer.status = status;
  answer.response =
      "HTTP/1.1 " + std::to_string(status) + " " + http::reason_phrase(status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n";
  answer.response += extra_headers;
  answer.response += "\r\n";
  answer.response += body;
  answer.error = std::move(message);
  return answer;
}

// MQTT 5.0 section 6: the subprotocol is "mqtt"; MQTT 3.1 clients offered "mqttv3.1". The
// client's spelling is echoed, as clients compare it exactly.
std::optional<std::string_view> choose_subprotocol(const std::vector<std::string_view>& offered) {
  for (std::string_view wanted : {"mqtt", "mqttv3.1"}) {
    for (std::string_view token : offered) {
      if (iequals(token, wanted)) return token;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string websocket_accept_key(std::string_view key) {
  std::string input(key);
  input += kAcceptGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha1(), nullptr);
  return core::base64_encode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

WebSocketUpgrade answer_upgrade(const http::Request& request, const WebSocketSettings& settings) {
  if (request.method != "GET") {
    return refuse(405, "a WebSocket upgrade is a GET request", "Allow: GET\r\n");
  }
  if (request.version_minor < 1) return refuse(400, "a WebSocket upgrade needs HTTP/1.1");
  const auto target = http::split_target(request.target);
  if (!target || target->path != settings.path) {
    return refuse(404, "the WebSocket endpoint is " + settings.path);
  }
  if (!has_token(request, "upgrade", "websocket")) {
    return refuse(400, "a WebSocket upgrade needs \"Upgrade: websocket\"");
  }
  if (!has_token(request, "connection", "upgrade")) {
    return refuse(400, "a WebSocket upgrade needs \"Connection: Upgrade\"");
  }
  const std::string* version = request.header("sec-websocket-version");
  if (!version || trim(*version) != "13") {
    return refuse(426, "only WebSocket version 13 is supported", "Sec-WebSocket-Version: 13\r\n");
  }
  const std::string* key_header = request.header("sec-websocket-key");
  const std::string_view key = key_header ? trim(*key_header) : std::string_view();
  const auto nonce = core::base64_decode(key);
  if (!nonce || nonce->size() != 16) {
    return refuse(400, "Sec-WebSocket-Key must be the base64 of 16 bytes");
  }
  // Origin protects browsers' users from other sites' scripts; other clients do not send it
  // (and could send anything).
  const std::string* origin = request.header("origin");
  if (origin && !settings.allowed_origins.empty() &&
      std::none_of(settings.allowed_origins.begin(), settings.allowed_origins.end(),
                   [&](const std::string& allowed) { return iequals(trim(*origin), allowed); })) {
    return refuse(403, "this Origin may not connect");
  }
  const auto offered = header_tokens(request, "sec-websocket-protocol");
  const auto subprotocol = choose_subprotocol(offered);
  if (!offered.empty() && !subprotocol) {
    return refuse(400, "the WebSocket subprotocol must be \"mqtt\"");
  }

  WebSocketUpgrade answer;
  answer.accepted = true;
  answer.status = 101;
  answer.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      websocket_accept_key(key) + "\r\n";
  if (subprotocol) {
    answer.subprotocol = std::string(*subprotocol);
    answer.response += "Sec-WebSocket-Protocol: " + answer.subprotocol + "\r\n";
  }
  answer.response += "\r\n";
  return answer;
}

// wslay calls plain functions; each finds its layer through user_data.
struct WebSocketLayer::Callbacks {
  static WebSocketLayer& self(void* user_data) { return *static_cast<WebSocketLayer*>(user_data); }

  static ssize_t recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int /*flags*/,
                      void* user_data) {
    WebSocketLayer& s = self(user_data);
    if (s.input_.empty()) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    const size_t n = std::min(len, s.input_.size());
    std::memcpy(buf, s.input_.data(), n);
    s.input_.remove_prefix(n);
    return static_cast<ssize_t>(n);
  }

  // The connection's output buffer takes everything, so wslay never holds half a frame.
  static ssize_t send(wslay_event_context_ptr /*ctx*/, const uint8_t* data, size_t len,
                      int /*flags*/, void* user_data) {
    self(user_data).down_->append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }

  // Messages are not buffered by wslay (payloads go up as they arrive), so the size of a
  // fragmented message is counted here; wslay itself checks each frame.
  static void frame_start(wslay_event_context_ptr ctx,
                          const wslay_event_on_frame_recv_start_arg* arg, void* user_data) {
    WebSocketLayer& s = self(user_data);
    if (arg->opcode == WSLAY_TEXT_FRAME) {
      // MQTT travels in binary frames only; any other data frame closes (MQTT-6.0.0-1).
      s.data_frame_ = false;
      s.too_big_ = true;  // nothing more goes up
      wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, nullptr, 0);
      wslay_event_shutdown_read(ctx);
      return;
    }
    s.data_frame_ = !wslay_is_ctrl_frame(arg->opcode);
    if (!s.data_frame_) return;
    if (arg->opcode != WSLAY_CONTINUATION_FRAME) s.message_bytes_ = 0;
    s.message_bytes_ += arg->payload_length;
    if (s.message_bytes_ > s.settings_.max_message_bytes) {
      s.too_big_ = true;
      wslay_event_queue_close(ctx, WSLAY_CODE_MESSAGE_TOO_BIG, nullptr, 0);
      wslay_event_shutdown_read(ctx);
    }
  }

  static void frame_chunk(wslay_event_context_ptr /*ctx*/,
                          const wslay_event_on_frame_recv_chunk_arg* arg, void* user_data) {
    WebSocketLayer& s = self(user_data);
    if (s.data_frame_ && !s.too_big_) {
      s.up_->append(reinterpret_cast<const char*>(arg->data), arg->data_length);
    }
  }

  static ssize_t frame_send(const uint8_t* data, size_t len, int /*flags*/, void* user_data) {
    self(user_data).down_->append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }

  // The data frame context only writes.
  static ssize_t frame_recv(uint8_t* /*buf*/, size_t /*len*/, int /*flags*/, void* /*user*/) {
    return WSLAY_ERR_WANT_READ;
  }
};

WebSocketLayer::WebSocketLayer(WebSocketSettings settings)
    : settings_(std::move(settings)),
      parser_(std::make_unique<http::RequestParser>(
          http::ParseLimits{settings_.max_header_bytes, /*max_body_bytes=*/0})) {}

std::unique_ptr<WebSocketLayer> WebSocketLayer::accepted(WebSocketSettings settings,
                                                         std::string subprotocol) {
  std::unique_ptr<WebSocketLayer> layer(new WebSocketLayer(std::move(settings)));
  layer->parser_.reset();
  layer->subprotocol_ = std::move(subprotocol);
  std::string nothing;  // no early output yet
  layer->open(nothing);
  return layer;
}

WebSocketLayer::~WebSocketLayer() {
  if (events_) wslay_event_context_free(events_);
  if (frames_) wslay_frame_context_free(frames_);
}

bool WebSocketLayer::fail(std::string reason) {
  failed_ = true;
  error_ = std::move(reason);
  return false;
}

bool WebSocketLayer::on_input(std::string_view in, std::string& up, std::string& down) {
  if (failed_) return false;
  if (events_) return read_frames(in, up, down);

  for (bool complete = false; !complete;) {
    const auto result = parser_->feed(in);
    in.remove_prefix(result.consumed);
    switch (result.event) {
      case http::RequestParser::Event::NeedMore:
        return true;
      case http::RequestParser::Event::HeadersDone:
        break;  // "Expect: 100-continue" on a GET: nothing to wait for
      case http::RequestParser::Event::Error: {
        WebSocketUpgrade answer = refuse(parser_->status(), parser_->error());
        down += answer.response;
        return fail("WebSocket handshake failed: " + answer.error);
      }
      case http::RequestParser::Event::Complete:
        complete = true;
        break;
    }
  }
  const http::Request request = parser_->take();
  parser_.reset();
  WebSocketUpgrade answer = answer_upgrade(request, settings_);
  down += answer.response;
  if (!answer.accepted) return fail("WebSocket handshake failed: " + answer.error);
  subprotocol_ = std::move(answer.subprotocol);
  if (!open(down)) return false;
  // A client may send its first frames right behind the request.
  return in.empty() || read_frames(in, up, down);
}

bool WebSocketLayer::open(std::string& down) {
  const wslay_event_callbacks event_callbacks{
      Callbacks::recv,        Callbacks::send,        nullptr,
      Callbacks::frame_start, Callbacks::frame_chunk, /*frame_end=*/nullptr,
      /*msg_recv=*/nullptr};
  const wslay_frame_callbacks frame_callbacks{Callbacks::frame_send, Callbacks::frame_recv,
                                              nullptr};
  if (wslay_event_context_server_init(&events_, &event_callbacks, this) != 0) {
    events_ = nullptr;
    return fail("WebSocket: out of memory");
  }
  if (wslay_frame_context_init(&frames_, &frame_callbacks, this) != 0) {
    frames_ = nullptr;
    return fail("WebSocket: out of memory");
  }
  wslay_event_config_set_no_buffering(events_, 1);
  wslay_event_config_set_max_recv_msg_length(events_, settings_.max_message_bytes);
  if (early_output_.empty()) return true;
  const std::string early = std::move(early_output_);
  early_output_.clear();
  return on_output(early, down);
}

bool WebSocketLayer::read_frames(std::string_view in, std::string& up, std::string& down) {
  input_ = in;
  up_ = &up;
  down_ = &down;
  const int received = wslay_event_recv(events_);
  const int sent = wslay_event_send(events_);  // pongs, the answer to a close
  input_ = {};
  up_ = nullptr;
  down_ = nullptr;
  if (wslay_event_get_close_received(events_)) return fail("WebSocket closed by peer");
  if (received != 0 || sent != 0) return fail("WebSocket protocol error");
  if (!wslay_event_get_read_enabled(events_)) {
    // wslay (or frame_start) found an error and queued a close frame saying which.
    switch (wslay_event_get_status_code_sent(events_)) {
      case WSLAY_CODE_MESSAGE_TOO_BIG:
        return fail("WebSocket message larger than " + std::to_string(settings_.max_message_bytes) +
                    " bytes");
      case WSLAY_CODE_UNSUPPORTED_DATA:
        return fail("WebSocket text frame: MQTT travels in binary frames only");
      default:
        return fail("WebSocket protocol error");
    }
  }
  return true;
}

bool WebSocketLayer::on_output(std::string_view out, std::string& down) {
  if (failed_) return false;
  if (!events_) {
    if (early_output_.size() + out.size() > kMaxEarlyOutput) {
      return fail("WebSocket: too much output before the handshake");
    }
    early_output_.append(out);
    return true;
  }
  if (out.empty()) return true;
  if (!wslay_event_get_write_enabled(events_)) return fail("WebSocket closed");
  down_ = &down;
  // Control frames wslay queued go first, whole, so they never cut into our frame.
  const int sent = wslay_event_send(events_);
  wslay_frame_iocb frame{};
  frame.fin = 1;
  frame.opcode = WSLAY_BINARY_FRAME;
  frame.payload_length = out.size();
  frame.data = reinterpret_cast<const uint8_t*>(out.data());
  frame.data_length = out.size();
  const ssize_t written = sent == 0 ? wslay_frame_send(frames_, &frame) : -1;
  down_ = nullptr;
  if (written != static_cast<ssize_t>(out.size())) return fail("WebSocket: framing failed");
  return true;
}

void WebSocketLayer::close(std::string& down) {
  if (failed_ || !events_ || !wslay_event_get_write_enabled(events_)) return;
  down_ = &down;
  wslay_event_queue_close(events_, WSLAY_CODE_NORMAL_CLOSURE, nullptr, 0);
  wslay_event_send(events_);
  down_ = nullptr;
}

}  // namespace starling::net
