// Bearer-token authorization of API requests. With tokens configured every API request needs
// one whose scopes allow it ("admin" allows everything); without any, the API answers only to
// loopback peers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "http/parser/request_parser.h"
#include "http/response.h"

namespace starling::http {

enum class Scope { Read, Publish, Admin };

// Null when the request may go on; otherwise the 401 or 403 to answer.
std::optional<Response> authorize(const Request& request, bool loopback,
                                  const config::HttpSettings& settings, Scope needed);

// The scopes a request has: its token's; all of them on loopback when no tokens are
// configured; none without a known token.
std::vector<std::string> granted_scopes(const Request& request, bool loopback,
                                        const config::HttpSettings& settings);

}  // namespace starling::http
