// What the connections of one listener share: its settings, its connection count and, on a
// TLS listener, the certificates in force (swapped on SIGHUP for new connections).
#pragma once

#include <memory>

#include "config/config.h"
#include "net/admission.h"

namespace starling::net {

class TlsContextHolder;

struct ListenerContext {
  config::Listener config;
  Admission::ListenerCount count;
  std::shared_ptr<TlsContextHolder> tls;  // null: plain TCP
};

}  // namespace starling::net
