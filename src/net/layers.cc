#include "net/layers.h"

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

LayerStack make_layers(const ListenerContext& listener, uint32_t max_packet_size) {
  LayerStack stack;
  const config::Listener& config = listener.config;
  if (config.proxy_protocol) {
    auto layer = std::make_unique<ProxyLayer>();
    stack.proxy = layer.get();
    stack.layers.push_back(std::move(layer));
  }
  if (listener.tls) {
    auto layer = std::make_unique<TlsLayer>(listener.tls->get());
    stack.tls = layer.get();
    stack.layers.push_back(std::move(layer));
  }
  if (config.protocol == "ws") {
    auto layer = std::make_unique<WebSocketLayer>(websocket_settings(config, max_packet_size));
    stack.websocket = layer.get();
    stack.layers.push_back(std::move(layer));
  }
  return stack;
}

}  // namespace starling::net
