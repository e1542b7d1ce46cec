#include "net/layers.h"

#include <stdexcept>

#include "net/layers/proxy_protocol.h"
#include "net/layers/tls.h"
#include "net/layers/websocket.h"

namespace starling::net {

WebSocketSettings websocket_settings(const config::Listener& listener, uint32_t max_packet_size) {
  WebSocketSettings s;
  s.path = listener.ws_path;
  s.allowed_origins = listener.ws_allowed_origins;
  // A message carries at least one packet; some clients put a few in one message.
  s.max_message_bytes = uint64_t{max_packet_size} + 64 * 1024;
  return s;
}

uint8_t LayerStack::push(std::unique_ptr<StreamLayer> layer) {
  if (size_ == kMaxLayers) throw std::logic_error("a connection has at most three layers");
  layers_[size_] = std::move(layer);
  return size_++;
}

void LayerStack::add(std::unique_ptr<ProxyLayer> layer) {
  proxy_ = push(std::move(layer));
}

void LayerStack::add(std::unique_ptr<TlsLayer> layer) {
  tls_ = push(std::move(layer));
}

void LayerStack::add(std::unique_ptr<WebSocketLayer> layer) {
  websocket_ = push(std::move(layer));
}

ProxyLayer* LayerStack::proxy() const {
  return proxy_ == kNone ? nullptr : static_cast<ProxyLayer*>(layers_[proxy_].get());
}

TlsLayer* LayerStack::tls() const {
  return tls_ == kNone ? nullptr : static_cast<TlsLayer*>(layers_[tls_].get());
}

WebSocketLayer* LayerStack::websocket() const {
  return websocket_ == kNone ? nullptr : static_cast<WebSocketLayer*>(layers_[websocket_].get());
}

LayerStack make_layers(const ListenerContext& listener, uint32_t max_packet_size) {
  LayerStack stack;
  const config::Listener& config = listener.config;
  if (config.proxy_protocol) stack.add(std::make_unique<ProxyLayer>());
  if (listener.tls) stack.add(std::make_unique<TlsLayer>(listener.tls->get()));
  if (config.protocol == "ws") {
    stack.add(std::make_unique<WebSocketLayer>(websocket_settings(config, max_packet_size)));
  }
  return stack;
}

}  // namespace starling::net
