// The stream layers a listener's connections run, socket side first: the PROXY protocol
// header, TLS, WebSocket.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <utility>

#include "net/layers/stream_layer.h"
#include "net/listener_context.h"

namespace starling::net {

class ProxyLayer;
class TlsLayer;
class WebSocketLayer;
struct WebSocketSettings;

// A connection's layers, at most one of each kind, socket side first. 32 bytes: it lives as
// long as the connection, so the kinds are kept as slot numbers rather than typed pointers.
class LayerStack {
 public:
  static constexpr size_t kMaxLayers = 3;

  LayerStack() = default;
  // A moved-from stack is empty (the default move would leave its count behind).
  LayerStack(LayerStack&& other) noexcept { swap(other); }
  LayerStack& operator=(LayerStack&& other) noexcept {
    swap(other);
    return *this;
  }
  void swap(LayerStack& other) noexcept {
    std::swap(layers_, other.layers_);
    std::swap(size_, other.size_);
    std::swap(proxy_, other.proxy_);
    std::swap(tls_, other.tls_);
    std::swap(websocket_, other.websocket_);
  }

  void add(std::unique_ptr<ProxyLayer> layer);
  void add(std::unique_ptr<TlsLayer> layer);
  void add(std::unique_ptr<WebSocketLayer> layer);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  StreamLayer& operator[](size_t i) const { return *layers_[i]; }

  ProxyLayer* proxy() const;
  TlsLayer* tls() const;
  WebSocketLayer* websocket() const;

 private:
  static constexpr uint8_t kNone = 0xff;
  uint8_t push(std::unique_ptr<StreamLayer> layer);

  std::array<std::unique_ptr<StreamLayer>, kMaxLayers> layers_;
  uint8_t size_ = 0;
  uint8_t proxy_ = kNone;
  uint8_t tls_ = kNone;
  uint8_t websocket_ = kNone;
};

// max_packet_size: the MQTT limit, which bounds a WebSocket message too.
LayerStack make_layers(const ListenerContext& listener, uint32_t max_packet_size);

WebSocketSettings websocket_settings(const config::Listener& listener, uint32_t max_packet_size);

}  // namespace starling::net
