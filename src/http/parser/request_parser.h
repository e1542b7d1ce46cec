// Incremental HTTP/1.1 request parsing on top of Debian's http-parser (nodejs/http-parser 2.9):
// one RequestParser per connection, fed whatever bytes arrive. It stops after each complete
// request, so pipelined requests are answered one at a time and the bytes of the next stay
// with the caller, and it enforces the header and body size limits as the bytes arrive (a
// Content-Length over the limit fails before the body is sent).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct http_parser;  // http_parser.h, kept out of this header

namespace starling::http {

struct Request {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // as sent: "/api/v1/publish?topic=a"
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  unsigned version_minor = 1;  // HTTP/1.x
  bool keep_alive = true;      // the connection may stay open after the response
  bool expect_continue = false;

  // The first header with this (lower-case) name, or null.
  const std::string* header(std::string_view name) const;
};

struct ParseLimits {
  size_t max_header_bytes = 16 * 1024;  // request line and headers together
  size_t max_body_bytes = 1024 * 1024;
};

class RequestParser {
 public:
  enum class Event : uint8_t {
    NeedMore,     // every byte given was consumed; the request is not complete
    HeadersDone,  // the headers of a request that sent "Expect: 100-continue" are in
    Complete,     // a whole request: take() it
    Error,        // status() and error() say why; the connection cannot be reused
  };
  struct Result {
    size_t consumed = 0;
    Event event = Event::NeedMore;
  };

  explicit RequestParser(ParseLimits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  void set_limits(const ParseLimits& limits) { limits_ = limits; }
  // Parses from data until a request is complete, an expect-continue request's headers are
  // in, an error, or the end of data. After Error, feed() consumes nothing.
  Result feed(std::string_view data);
  // The completed request; the parser is ready for the next one.
  Request take();
  // True between the first byte of a request and its completion.
  bool in_progress() const { return in_progress_; }

  // After Error: the HTTP status to answer (400, 413, 431, 505) and a reason.
  int status() const { return status_; }
  const std::string& error() const { return error_; }

 private:
  struct Callbacks;
  friend struct Callbacks;
  int fail(int status, std::string reason);

  ParseLimits limits_;
  std::unique_ptr<::http_parser> parser_;
  Request request_;
  std::string field_;  // the header name being read
  bool reading_value_ = false;
  size_t header_bytes_ = 0;
  bool in_progress_ = false;
  bool complete_ = false;
  bool headers_done_ = false;
  int status_ = 0;
  std::string error_;
};

}  // namespace starling::http
