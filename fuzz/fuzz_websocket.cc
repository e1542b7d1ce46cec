// libFuzzer target for the WebSocket layer (net/layers/websocket over http-parser and wslay). The
// first input byte picks a mode and a chunk size. Mode 0: a valid upgrade request, then the
// input as frames; mode 1: the input as the upgrade request itself (and any frames behind it);
// mode 2: a layer started open (the HTTP port's upgrade), then the input as frames. The bytes
// are fed whole and in chunks: where input is cut must not change the bytes passed up and
// answered (wslay's UTF-8 checks aside, see below). A layer still open must frame
// output; a failed one must say why and stay failed. Any disagreement traps.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/layers/websocket.h"

namespace {

using starling::net::WebSocketLayer;
using starling::net::WebSocketSettings;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::string_view kUpgrade =
    "GET /mqtt HTTP/1.1\r\nHost: broker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";

WebSocketSettings settings() {
  WebSocketSettings s;
  s.max_message_bytes = 4096;  // small enough for the fuzzer to reach
  s.max_header_bytes = 1024;
  return s;
}

struct Outcome {
  bool ok = true;
  bool established = false;
  std::string up;
  std::string down;
  std::string error;
};

Outcome run(int mode, std::string_view data, size_t chunk) {
  std::unique_ptr<WebSocketLayer> layer = mode == 2 ? WebSocketLayer::accepted(settings(), "mqtt")
                                                    : std::make_unique<WebSocketLayer>(settings());
  Outcome out;
  if (mode == 0) {
    out.ok = layer->on_input(kUpgrade, out.up, out.down);
    check(out.ok && layer->established() && out.up.empty());
    out.down.clear();
  }
  for (size_t i = 0; i < data.size() && out.ok; i += chunk) {
    out.ok = layer->on_input(data.substr(i, chunk), out.up, out.down);
  }
  out.established = layer->established();
  out.error = layer->error();
  std::string framed;
  if (out.ok) {
    check(out.error.empty());
    constexpr std::string_view kPublish("\x30\x03\x00\x01t", 5);
    check(layer->on_output(kPublish, framed));
    check(layer->established() ? framed.size() == 2 + kPublish.size() : framed.empty());
  } else {
    check(!out.error.empty());
    check(!layer->on_input("x", out.up, framed));  // stays failed
    check(!layer->on_output("x", framed));
    check(framed.empty());
  }
  if (out.established) {
    std::string closing;
    layer->close(closing);
    check(closing.size() <= 4);  // at most a close frame with a status code
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const int mode = bytes[0] % 3;
  const size_t chunk = 1 + (bytes[0] / 3) % 23;
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);

  Outcome whole = run(mode, data, data.size() + 1);
  Outcome pieces = run(mode, data, chunk);
  check(whole.established == pieces.established);
  if (whole.ok && pieces.ok) {
    check(whole.up == pieces.up);
    check(whole.down == pieces.down);
  } else {
    // Where the input was cut may change when a bad stream fails and what went up before:
    // wslay checks the UTF-8 of text frames and close reasons on the bytes it has (a bad byte
    // at the start of a later piece of a close reason is even skipped), and the close frame of
    // a failure drops pongs still queued. What went up is a prefix of the same stream.
    const std::string& shorter = whole.up.size() < pieces.up.size() ? whole.up : pieces.up;
    const std::string& longer = whole.up.size() < pieces.up.size() ? pieces.up : whole.up;
    check(longer.starts_with(shorter));
  }
  return 0;
}
