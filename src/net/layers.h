// The stream layers a listener's connections run, socket side first: the PROXY protocol
// header, TLS, WebSocket.
#pragma once

#include <memory>
#include <vector>

#include "net/layers/stream_layer.h"
#include "net/listener_context.h"

namespace starling::net {

class ProxyLayer;
class TlsLayer;
class WebSocketLayer;
struct WebSocketSettings;

struct LayerStack {
  std::vector<std::unique_ptr<StreamLayer>> layers;
  ProxyLayer* proxy = nullptr;
  TlsLayer* tls = nullptr;
  WebSocketLayer* websocket = nullptr;
};

// max_packet_size: the MQTT limit, which bounds a WebSocket message too.
LayerStack make_layers(const ListenerContext& listener, uint32_t max_packet_size);

WebSocketSettings websocket_settings(const config::Listener& listener, uint32_t max_packet_size);

}  // namespace starling::net
