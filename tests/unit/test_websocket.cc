// The WebSocket layer: the upgrade handshake (RFC 6455 section 4, MQTT 5.0 section 6), frames
// from a client (built by hand or by a wslay client context), and our frames as a client reads
// them.
#include <gtest/gtest.h>
#include <wslay/wslay.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "http/parser/request_parser.h"
#include "net/layers/websocket.h"

namespace starling::net {
namespace {

using namespace std::string_literals;

constexpr std::string_view kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string request(std::string_view extra_headers = "Sec-WebSocket-Protocol: mqtt\r\n",
                    std::string_view request_line = "GET /mqtt HTTP/1.1",
                    std::string_view key = kRfcKey) {
  std::string r(request_line);
  r += "\r\nHost: broker.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  r += "Sec-WebSocket-Key: ";
  r += key;
  r += "\r\nSec-WebSocket-Version: 13\r\n";
  r += extra_headers;
  r += "\r\n";
  return r;
}

// A frame as a client writes it: masked unless told otherwise.
std::string frame(uint8_t opcode, std::string_view payload, bool fin = true, bool mask = true) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  const uint8_t mask_bit = mask ? 0x80 : 0;
  if (payload.size() < 126) {
    f += static_cast<char>(mask_bit | payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      f += static_cast<char>((uint64_t{payload.size()} >> shift) & 0xFF);
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (mask) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f += mask ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return f;
}

// A client side on wslay: encodes masked messages, decodes what the server wrote.
class WsClient {
 public:
  struct Message {
    uint8_t opcode;
    std::string payload;
    uint16_t status_code;
  };

  WsClient() {
    const wslay_event_callbacks callbacks{recv, send, genmask, nullptr, nullptr, nullptr, on_msg};
    wslay_event_context_client_init(&ctx_, &callbacks, this);
  }
  ~WsClient() { wslay_event_context_free(ctx_); }

  std::string encode(uint8_t opcode, std::string_view payload) {
    const wslay_event_msg msg{opcode, reinterpret_cast<const uint8_t*>(payload.data()),
                              payload.size()};
    EXPECT_EQ(wslay_event_queue_msg(ctx_, &msg), 0);
    return flush();
  }
  std::string close(uint16_t code) {
    EXPECT_EQ(wslay_event_queue_close(ctx_, code, nullptr, 0), 0);
    return flush();
  }
  // Returns wslay_event_recv's result: 0 unless the server's bytes break the protocol.
  int decode(std::string_view bytes) {
    input_ = bytes;
    return wslay_event_recv(ctx_);
  }

  std::vector<Message> messages;

 private:
  std::string flush() {
    output_.clear();
    EXPECT_EQ(wslay_event_send(ctx_), 0);
    return output_;
  }
  static WsClient& self(void* user) { return *static_cast<WsClient*>(user); }
  static ssize_t recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
    WsClient& c = self(user);
    if (c.input_.empty()) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    const size_t n = std::min(len, c.input_.size());
    std::memcpy(buf, c.input_.data(), n);
    c.input_.remove_prefix(n);
    return static_cast<ssize_t>(n);
  }
  static ssize_t send(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
    self(user).output_.append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }
  static int genmask(wslay_event_context_ptr, uint8_t* buf, size_t len, void*) {
    for (size_t i = 0; i < len; ++i)
      buf[i] = static_cast<uint8_t>(0xA5 + i * 31);
    return 0;
  }
  static void on_msg(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
    self(user).messages.push_back(
        {arg->opcode, std::string(reinterpret_cast<const char*>(arg->msg), arg->msg_length),
         arg->status_code});
  }

  wslay_event_context_ptr ctx_ = nullptr;
  std::string_view input_;
  std::string output_;
};

struct Fed {
  bool ok = true;
  std::string up;
  std::string down;
};

Fed feed(WebSocketLayer& layer, std::string_view data, size_t step = 1 << 20) {
  Fed fed;
  for (size_t i = 0; i < data.size() && fed.ok; i += step) {
    fed.ok = layer.on_input(data.substr(i, step), fed.up, fed.down);
  }
  return fed;
}

// The layer after a successful handshake; the 101 is checked and dropped.
std::unique_ptr<WebSocketLayer> open_layer(WebSocketSettings settings = {}) {
  auto layer = std::make_unique<WebSocketLayer>(std::move(settings));
  Fed fed = feed(*layer, request());
  EXPECT_TRUE(fed.ok) << layer->error();
  EXPECT_TRUE(fed.down.starts_with("HTTP/1.1 101 ")) << fed.down;
  EXPECT_TRUE(layer->established());
  return layer;
}

std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

// The refusal of a request: the layer fails, answers status with a JSON body, and says why.
void expect_refused(const std::string& raw, int status, WebSocketSettings settings = {}) {
  WebSocketLayer layer(std::move(settings));
  Fed fed = feed(layer, raw);
  EXPECT_FALSE(fed.ok) << raw;
  EXPECT_FALSE(layer.established());
  EXPECT_TRUE(fed.down.starts_with("HTTP/1.1 " + std::to_string(status) + " ")) << raw << "\n--\n"
                                                                                << fed.down;
  EXPECT_NE(fed.down.find("Connection: close\r\n"), std::string::npos);
  const size_t body_at = fed.down.find("\r\n\r\n") + 4;
  const std::string body = fed.down.substr(body_at);
  EXPECT_TRUE(body.starts_with("{\"error\":\"")) << body;
  EXPECT_NE(fed.down.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_TRUE(layer.error().starts_with("WebSocket handshake failed: ")) << layer.error();
  EXPECT_TRUE(fed.up.empty());
  // Stays failed.
  std::string up, down;
  EXPECT_FALSE(layer.on_input(frame(WSLAY_BINARY_FRAME, "x"), up, down));
  EXPECT_FALSE(layer.on_output("x", down));
}

TEST(WebSocket, AcceptKeyFromRfc) {
  EXPECT_EQ(websocket_accept_key(kRfcKey), kRfcAccept);
}

TEST(WebSocket, Handshake) {
  WebSocketLayer layer(WebSocketSettings{});
  EXPECT_FALSE(layer.established());
  Fed fed = feed(layer, request());
  ASSERT_TRUE(fed.ok) << layer.error();
  EXPECT_TRUE(layer.established());
  EXPECT_EQ(layer.subprotocol(), "mqtt");
  EXPECT_EQ(fed.down,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: mqtt\r\n\r\n");
  EXPECT_TRUE(fed.up.empty());
}

TEST(WebSocket, HandshakeByteByByteAndFramesBehind) {
  WsClient client;
  const std::string bytes = request() + client.encode(WSLAY_BINARY_FRAME, "\xC0\x00"s);
  WebSocketLayer layer(WebSocketSettings{});
  Fed fed = feed(layer, bytes, 1);
  ASSERT_TRUE(fed.ok) << layer.error();
  EXPECT_EQ(fed.up, std::string("\xC0\x00", 2));

  // The same bytes in one piece: the frame right behind the request goes up too.
  WebSocketLayer whole(WebSocketSettings{});
  Fed one = feed(whole, bytes);
  ASSERT_TRUE(one.ok) << whole.error();
  EXPECT_EQ(one.up, std::string("\xC0\x00", 2));
  EXPECT_EQ(one.down, fed.down);
}

TEST(WebSocket, Subprotocols) {
  struct Case {
    std::string header;
    std::string chosen;  // the answer's Sec-WebSocket-Protocol, "" for none
  };
  for (const Case& c : std::vector<Case>{
           {"", ""},
           {"Sec-WebSocket-Protocol: mqtt\r\n", "mqtt"},
           {"Sec-WebSocket-Protocol: mqttv3.1\r\n", "mqttv3.1"},
           {"Sec-WebSocket-Protocol: foo,  mqtt , bar\r\n", "mqtt"},
           {"Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n", "mqtt"},
           {"Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: mqtt\r\n", "mqtt"},
           {"Sec-WebSocket-Protocol: MQTT\r\n", "MQTT"},
       }) {
    WebSocketLayer layer(WebSocketSettings{});
    Fed fed = feed(layer, request(c.header));
    ASSERT_TRUE(fed.ok) << c.header << layer.error();
    EXPECT_EQ(layer.subprotocol(), c.chosen);
    const bool has_header = fed.down.find("Sec-WebSocket-Protocol:") != std::string::npos;
    EXPECT_EQ(has_header, !c.chosen.empty()) << fed.down;
    if (!c.chosen.empty()) {
      EXPECT_NE(fed.down.find("\r\nSec-WebSocket-Protocol: " + c.chosen + "\r\n"),
                std::string::npos);
    }
  }
  expect_refused(request("Sec-WebSocket-Protocol: chat, superchat\r\n"), 400);
}

TEST(WebSocket, BadRequests) {
  // Version.
  std::string old_version = request();
  old_version.replace(old_version.find("Version: 13"), 11, "Version: 8");
  expect_refused(old_version, 426);
  {
    WebSocketLayer layer(WebSocketSettings{});
    Fed fed = feed(layer, old_version);
    EXPECT_NE(fed.down.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  }
  // Path, method, HTTP version.
  expect_refused(request("", "GET /other HTTP/1.1"), 404);
  expect_refused(request("", "GET / HTTP/1.1"), 404);
  expect_refused(request("", "POST /mqtt HTTP/1.1"), 405);
  expect_refused(request("", "GET /mqtt HTTP/1.0"), 400);
  // Key: missing, not base64, not 16 bytes.
  expect_refused(request("", "GET /mqtt HTTP/1.1", ""), 400);
  expect_refused(request("", "GET /mqtt HTTP/1.1", "not base64!"), 400);
  expect_refused(request("", "GET /mqtt HTTP/1.1", "dGhlIHNhbXBsZSBub25j"), 400);
  // Upgrade and Connection.
  expect_refused(
      "GET /mqtt HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
      "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      400);
  expect_refused(
      "GET /mqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      400);
  // Not HTTP at all.
  expect_refused(std::string("\x10\x0c\x00\x04MQTT\x05\x02\x00\x3c\x00\x00", 14), 400);
}

TEST(WebSocket, LenientHeaders) {
  // A Connection list, other cases, a query string: accepted.
  WebSocketLayer layer(WebSocketSettings{});
  Fed fed = feed(layer,
                 "GET /mqtt?token=x HTTP/1.1\r\nhost: a\r\nupgrade: WebSocket\r\n"
                 "connection: keep-alive, upgrade\r\nsec-websocket-key:  dGhlIHNhbXBsZSBub25jZQ== "
                 "\r\nsec-websocket-version: 13\r\n\r\n");
  ASSERT_TRUE(fed.ok) << layer.error();
  EXPECT_NE(fed.down.find(kRfcAccept), std::string::npos);
}

TEST(WebSocket, RefusalBody) {
  WebSocketLayer layer(WebSocketSettings{});
  Fed fed = feed(layer, request("", "GET /nope HTTP/1.1"));
  EXPECT_FALSE(fed.ok);
  EXPECT_EQ(status_line(fed.down), "HTTP/1.1 404 Not Found");
  EXPECT_NE(fed.down.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_TRUE(fed.down.ends_with(
      "\r\n\r\n{\"error\":\"not_found\",\"message\":\"the WebSocket endpoint is /mqtt\"}"))
      << fed.down;
  EXPECT_EQ(layer.error(), "WebSocket handshake failed: the WebSocket endpoint is /mqtt");
}

TEST(WebSocket, OversizedHeaders) {
  const std::string big = "X-Padding: " + std::string(9000, 'a') + "\r\n";
  expect_refused(request(big), 431);
  // Refused as the bytes arrive, before the request ends.
  WebSocketLayer layer(WebSocketSettings{});
  Fed fed = feed(layer, "GET /mqtt HTTP/1.1\r\n" + big.substr(0, 8300), 100);
  EXPECT_FALSE(fed.ok);
  EXPECT_EQ(status_line(fed.down), "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST(WebSocket, ConfiguredPathAndOrigins) {
  WebSocketSettings settings;
  settings.path = "/ws";
  settings.allowed_origins = {"https://app.example"};
  expect_refused(request(), 404, settings);
  WebSocketLayer no_origin(settings);
  EXPECT_TRUE(feed(no_origin, request("", "GET /ws HTTP/1.1")).ok) << no_origin.error();
  WebSocketLayer good(settings);
  EXPECT_TRUE(feed(good, request("Origin: https://APP.example\r\n", "GET /ws HTTP/1.1")).ok);
  expect_refused(request("Origin: https://evil.example\r\n", "GET /ws HTTP/1.1"), 403, settings);
}

TEST(WebSocket, BinaryMessagesAreAByteStream) {
  auto layer = open_layer();
  WsClient client;
  // Two packets in one message, then one packet across two messages.
  const std::string connect("\x10\x02\x00\x00", 4);
  const std::string ping("\xC0\x00", 2);
  std::string bytes = client.encode(WSLAY_BINARY_FRAME, connect + ping);
  bytes += client.encode(WSLAY_BINARY_FRAME, "\x30\x05\x00"s);
  bytes += client.encode(WSLAY_BINARY_FRAME, std::string("\x01t\x00x", 4));
  Fed fed = feed(*layer, bytes);
  ASSERT_TRUE(fed.ok) << layer->error();
  EXPECT_EQ(fed.up, connect + ping + std::string("\x30\x05\x00\x01t\x00x", 7));
  EXPECT_TRUE(fed.down.empty());
}

TEST(WebSocket, TextFramesCloseTheConnection) {
  // MQTT-6.0.0-1: control packets travel in binary frames; any other data frame closes.
  auto layer = open_layer();
  Fed fed = feed(*layer, frame(WSLAY_TEXT_FRAME, "hello"));
  EXPECT_FALSE(fed.ok);
  EXPECT_TRUE(fed.up.empty());
  EXPECT_NE(layer->error().find("binary frames only"), std::string::npos) << layer->error();
  // The close frame says 1003 (unsupported data).
  ASSERT_GE(fed.down.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(fed.down[0]), 0x88);
  EXPECT_EQ(fed.down.substr(2, 2), std::string("\x03\xeb", 2));
}

TEST(WebSocket, FragmentedMessageWithPingInside) {
  const std::string bytes = frame(WSLAY_BINARY_FRAME, "ab", false) +
                            frame(WSLAY_CONTINUATION_FRAME, "cd", false) + frame(WSLAY_PING, "p1") +
                            frame(WSLAY_CONTINUATION_FRAME, "ef", true);
  for (size_t step : {size_t{1}, size_t{3}, bytes.size()}) {
    auto l = open_layer();
    Fed fed = feed(*l, bytes, step);
    ASSERT_TRUE(fed.ok) << l->error();
    EXPECT_EQ(fed.up, "abcdef");
    WsClient client;
    EXPECT_EQ(client.decode(fed.down), 0);
    ASSERT_EQ(client.messages.size(), 1u);
    EXPECT_EQ(client.messages[0].opcode, WSLAY_PONG);
    EXPECT_EQ(client.messages[0].payload, "p1");
  }
}

TEST(WebSocket, LargeMessageSplitAcrossInputs) {
  auto layer = open_layer();
  std::string payload(70000, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 7);
  WsClient client;
  const std::string bytes = client.encode(WSLAY_BINARY_FRAME, payload);
  Fed fed = feed(*layer, bytes, 1000);
  ASSERT_TRUE(fed.ok) << layer->error();
  EXPECT_EQ(fed.up, payload);
}

TEST(WebSocket, PingPong) {
  auto layer = open_layer();
  WsClient client;
  Fed fed = feed(*layer, client.encode(WSLAY_PING, "are you there"));
  ASSERT_TRUE(fed.ok) << layer->error();
  EXPECT_TRUE(fed.up.empty());
  WsClient reader;
  EXPECT_EQ(reader.decode(fed.down), 0);
  ASSERT_EQ(reader.messages.size(), 1u);
  EXPECT_EQ(reader.messages[0].opcode, WSLAY_PONG);
  EXPECT_EQ(reader.messages[0].payload, "are you there");
  // An unsolicited pong is ignored.
  Fed pong = feed(*layer, client.encode(WSLAY_PONG, "x"));
  EXPECT_TRUE(pong.ok);
  EXPECT_TRUE(pong.down.empty());
}

TEST(WebSocket, CloseHandshake) {
  auto layer = open_layer();
  WsClient client;
  // Data right before the close still goes up.
  std::string bytes = client.encode(WSLAY_BINARY_FRAME, "\xE0\x00"s);
  bytes += client.close(1000);
  Fed fed = feed(*layer, bytes);
  EXPECT_FALSE(fed.ok);
  EXPECT_EQ(layer->error(), "WebSocket closed by peer");
  EXPECT_EQ(fed.up, std::string("\xE0\x00", 2));
  WsClient reader;
  reader.decode(fed.down);
  ASSERT_EQ(reader.messages.size(), 1u);
  EXPECT_EQ(reader.messages[0].opcode, WSLAY_CONNECTION_CLOSE);
  EXPECT_EQ(reader.messages[0].status_code, 1000);
  std::string down;
  EXPECT_FALSE(layer->on_output("late", down));
  EXPECT_TRUE(down.empty());
}

TEST(WebSocket, UnmaskedFrameRefused) {
  auto layer = open_layer();
  Fed fed = feed(*layer, frame(WSLAY_BINARY_FRAME, "abc", true, /*mask=*/false));
  EXPECT_FALSE(fed.ok);
  EXPECT_EQ(layer->error(), "WebSocket protocol error");
  EXPECT_TRUE(fed.up.empty());
  WsClient reader;
  reader.decode(fed.down);
  ASSERT_EQ(reader.messages.size(), 1u);
  EXPECT_EQ(reader.messages[0].opcode, WSLAY_CONNECTION_CLOSE);
  EXPECT_EQ(reader.messages[0].status_code, WSLAY_CODE_PROTOCOL_ERROR);
}

TEST(WebSocket, OtherProtocolErrors) {
  for (const std::string& bad : {
           frame(WSLAY_CONTINUATION_FRAME, "x"),                                    // no message
           frame(WSLAY_BINARY_FRAME, "a", false) + frame(WSLAY_BINARY_FRAME, "b"),  // no CONT
           frame(0x3, "x"),                                                         // reserved
           frame(WSLAY_PING, std::string(126, 'p')),  // control frame too long
           frame(WSLAY_PING, "p", /*fin=*/false),     // fragmented control frame
           std::string("\xC2\x81") + "abcdx",         // RSV1 without an extension
       }) {
    auto layer = open_layer();
    Fed fed = feed(*layer, bad);
    EXPECT_FALSE(fed.ok);
    EXPECT_EQ(layer->error(), "WebSocket protocol error");
  }
}

TEST(WebSocket, MessageTooBig) {
  WebSocketSettings settings;
  settings.max_message_bytes = 100;
  {
    auto layer = open_layer(settings);
    EXPECT_TRUE(feed(*layer, frame(WSLAY_BINARY_FRAME, std::string(100, 'a'))).ok);
    Fed fed = feed(*layer, frame(WSLAY_BINARY_FRAME, std::string(101, 'a')));
    EXPECT_FALSE(fed.ok);
    EXPECT_EQ(layer->error(), "WebSocket message larger than 100 bytes");
    EXPECT_TRUE(fed.up.empty());
    WsClient reader;
    reader.decode(fed.down);
    ASSERT_EQ(reader.messages.size(), 1u);
    EXPECT_EQ(reader.messages[0].status_code, WSLAY_CODE_MESSAGE_TOO_BIG);
  }
  {
    // Fragments each under the limit, together over it.
    auto layer = open_layer(settings);
    const std::string bytes = frame(WSLAY_BINARY_FRAME, std::string(40, 'a'), false) +
                              frame(WSLAY_CONTINUATION_FRAME, std::string(40, 'b'), false) +
                              frame(WSLAY_CONTINUATION_FRAME, std::string(40, 'c'), true);
    Fed fed = feed(*layer, bytes, 7);
    EXPECT_FALSE(fed.ok);
    EXPECT_EQ(layer->error(), "WebSocket message larger than 100 bytes");
    EXPECT_EQ(fed.up, std::string(40, 'a') + std::string(40, 'b'));
    WsClient reader;
    reader.decode(fed.down);
    ASSERT_EQ(reader.messages.size(), 1u);
    EXPECT_EQ(reader.messages[0].status_code, WSLAY_CODE_MESSAGE_TOO_BIG);
  }
}

TEST(WebSocket, OutputFraming) {
  auto layer = open_layer();
  std::string down;
  ASSERT_TRUE(layer->on_output("\x20\x03\x00\x00\x00"s, down));
  ASSERT_TRUE(layer->on_output("", down));  // nothing to frame
  const std::string big(70000, 'z');        // a 64-bit length
  ASSERT_TRUE(layer->on_output(big, down));
  const std::string medium(300, 'm');  // a 16-bit length
  ASSERT_TRUE(layer->on_output(medium, down));
  // Frames from the server are not masked: 2 + 10 + 4 bytes of headers.
  EXPECT_EQ(down.size(), 5 + 2 + big.size() + 10 + medium.size() + 4);

  WsClient client;
  for (size_t i = 0; i < down.size(); i += 999)
    EXPECT_EQ(client.decode(std::string_view(down).substr(i, 999)), 0);
  ASSERT_EQ(client.messages.size(), 3u);
  EXPECT_EQ(client.messages[0].opcode, WSLAY_BINARY_FRAME);
  EXPECT_EQ(client.messages[0].payload, std::string("\x20\x03\x00\x00\x00", 5));
  EXPECT_EQ(client.messages[1].payload, big);
  EXPECT_EQ(client.messages[2].payload, medium);
}

TEST(WebSocket, OutputBeforeHandshakeWaits) {
  WebSocketLayer layer(WebSocketSettings{});
  std::string down;
  ASSERT_TRUE(layer.on_output("early", down));
  EXPECT_TRUE(down.empty());
  Fed fed = feed(layer, request());
  ASSERT_TRUE(fed.ok);
  const size_t end = fed.down.find("\r\n\r\n") + 4;
  WsClient client;
  client.decode(std::string_view(fed.down).substr(end));
  ASSERT_EQ(client.messages.size(), 1u);
  EXPECT_EQ(client.messages[0].payload, "early");
}

TEST(WebSocket, PongBeforeOurFrame) {
  auto layer = open_layer();
  // A ping arriving in pieces: nothing queued until it is whole, then the pong goes out
  // before the next data frame, never inside it.
  const std::string ping = frame(WSLAY_PING, "hi");
  Fed half = feed(*layer, ping.substr(0, 3));
  ASSERT_TRUE(half.ok);
  Fed rest = feed(*layer, ping.substr(3));
  ASSERT_TRUE(rest.ok);
  std::string down = rest.down;
  ASSERT_TRUE(layer->on_output("data", down));
  WsClient client;
  client.decode(down);
  ASSERT_EQ(client.messages.size(), 2u);
  EXPECT_EQ(client.messages[0].opcode, WSLAY_PONG);
  EXPECT_EQ(client.messages[1].payload, "data");
}

TEST(WebSocket, BrokerCloses) {
  auto layer = open_layer();
  std::string down;
  layer->close(down);
  WsClient client;
  client.decode(down);
  ASSERT_EQ(client.messages.size(), 1u);
  EXPECT_EQ(client.messages[0].opcode, WSLAY_CONNECTION_CLOSE);
  EXPECT_EQ(client.messages[0].status_code, 1000);
  std::string more;
  EXPECT_FALSE(layer->on_output("x", more));
  EXPECT_TRUE(more.empty());
}

TEST(WebSocket, UpgradeOnTheHttpPort) {
  http::RequestParser parser;
  const std::string raw = request("Sec-WebSocket-Protocol: mqttv3.1\r\n");
  auto r = parser.feed(raw);
  ASSERT_EQ(r.event, http::RequestParser::Event::Complete);
  const http::Request req = parser.take();
  WebSocketUpgrade answer = answer_upgrade(req, WebSocketSettings{});
  ASSERT_TRUE(answer.accepted) << answer.error;
  EXPECT_EQ(answer.status, 101);
  EXPECT_EQ(answer.subprotocol, "mqttv3.1");
  EXPECT_NE(answer.response.find(kRfcAccept), std::string::npos);

  auto layer = WebSocketLayer::accepted(WebSocketSettings{}, answer.subprotocol);
  EXPECT_TRUE(layer->established());
  EXPECT_EQ(layer->subprotocol(), "mqttv3.1");
  WsClient client;
  Fed fed = feed(*layer, client.encode(WSLAY_BINARY_FRAME, "abc"));
  ASSERT_TRUE(fed.ok) << layer->error();
  EXPECT_EQ(fed.up, "abc");

  http::Request post = req;
  post.method = "POST";
  WebSocketUpgrade refused = answer_upgrade(post, WebSocketSettings{});
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.status, 405);
  EXPECT_EQ(status_line(refused.response), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(refused.response.find("\r\nAllow: GET\r\n"), std::string::npos);
}

}  // namespace
}  // namespace starling::net
