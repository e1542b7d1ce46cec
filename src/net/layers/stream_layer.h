// A layer between a connection's socket and the MQTT codec: PROXY protocol header, TLS,
// WebSocket. Layers are pure byte transformers, so they stack in any order a listener needs
// (socket -> proxy -> tls -> websocket -> MQTT) and can be tested and fuzzed without sockets.
#pragma once

#include <string>
#include <string_view>

namespace starling::net {

class StreamLayer {
 public:
  virtual ~StreamLayer() = default;

  // Bytes that came from the peer (from the layer below). Appends what they decode to for the
  // layer above to `up`, and bytes that must go back to the peer on their own (handshake
  // records, WebSocket pongs and close frames, an HTTP 400) to `down`. Returns false when the
  // stream is broken or finished: send `down`, then close; error() says why.
  virtual bool on_input(std::string_view in, std::string& up, std::string& down) = 0;

  // Bytes the layer above wants sent: appends their encoding to `down`. Bytes written before
  // the layer's handshake is complete are kept and encoded once it is. Returns false when the
  // stream cannot carry them (error() says why).
  virtual bool on_output(std::string_view out, std::string& down) = 0;

  // True once the layer's handshake (if any) is complete and application bytes flow.
  virtual bool established() const = 0;

  // Why on_input/on_output returned false; empty otherwise.
  virtual const std::string& error() const = 0;

  // The connection is quiet (called about once a second): give back buffer memory that holds
  // nothing now.
  virtual void release_idle_memory() {}
};

}  // namespace starling::net
