// Bearer-token authorization of API requests. With tokens configured every API request needs
// one whose scopes allow it ("admin" allows everything); without any, the API answers only to
// loopback peers.
#pragma once

#include <optional>

#include "config/config.h"
#include "http/parser/request_parser.h"
#include "http/response.h"

namespace starling::http {

enum class Scope { Read, Publish, Admin };

// Null when the request may go on; otherwise the 401 or 403 to answer.
std::optional<Response> authorize(const Request& request, bool loopback,
                                  const config::HttpSettings& settings, Scope needed);

}  // namespace starling::http
