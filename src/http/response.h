// An HTTP response and its bytes on the wire. Every error body is JSON:
// {"error": "<code>", "message": "<text>"}.
#pragma once

#include <string>
#include <string_view>

#include <utility>
#include <vector>
#include "http/parser/status.h"

namespace starling::http {

struct Response {
  int status = 200;
  std::string_view content_type = "application/json";  // a literal: no allocation per answer
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool close = false;  // close the connection after this response
};

Response json_response(int status, std::string body);
Response json_error(int status, std::string_view code, std::string_view message);

// Appends the response to out: status line, Date, Content-Type, Content-Length, Connection
// when it differs from the HTTP version's default, then the body (not for HEAD).
void serialize(const Response& r, bool keep_alive, bool head, unsigned version_minor,
               std::string& out);

// "HTTP/1.1 100 Continue" for a request that waits for it before sending its body.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace starling::http
