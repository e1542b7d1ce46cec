#include "http/parser/request_parser.h"

#include <http_parser.h>

#include "core/text.h"

namespace starling::http {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

const std::string* Request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

// http-parser calls plain functions; each finds its RequestParser through parser->data.
struct RequestParser::Callbacks {
  static RequestParser& self(::http_parser* p) { return *static_cast<RequestParser*>(p->data); }

  static int on_message_begin(::http_parser* p) {
    RequestParser& s = self(p);
    s.in_progress_ = true;
    s.request_ = Request{};
    s.request_.headers.reserve(8);  // one allocation for a usual request's headers
    s.field_.clear();
    s.reading_value_ = false;
    s.header_bytes_ = 0;
    s.headers_done_ = false;
    return 0;
  }

  // The request line and headers arrive in pieces; all of them count toward the limit.
  static int count_header(RequestParser& s, size_t n) {
    s.header_bytes_ += n;
    if (s.header_bytes_ > s.limits_.max_header_bytes) {
      return s.fail(431, "request headers larger than " +
                             std::to_string(s.limits_.max_header_bytes) + " bytes");
    }
    return 0;
  }

  static int on_url(::http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (count_header(s, n)) return 1;
    s.request_.target.append(at, n);
    return 0;
  }

  static int on_header_field(::http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (count_header(s, n)) return 1;
    if (s.reading_value_) {
      s.field_.clear();
      s.reading_value_ = false;
    }
    for (size_t i = 0; i < n; ++i)
      s.field_ += lower(at[i]);
    return 0;
  }

  static int on_header_value(::http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (count_header(s, n)) return 1;
    if (!s.reading_value_) {
      s.request_.headers.emplace_back(s.field_, std::string());
      s.reading_value_ = true;
    }
    s.request_.headers.back().second.append(at, n);
    return 0;
  }

  // Returns -1 on error: for this callback 1 means "no body", not "stop".
  static int on_headers_complete(::http_parser* p) {
    RequestParser& s = self(p);
    Request& r = s.request_;
    if (p->http_major != 1) {
      s.fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
      return -1;
    }
    r.method = http_method_str(static_cast<http_method>(p->method));
    r.version_minor = p->http_minor;
    r.keep_alive = http_should_keep_alive(p) != 0;
    // A declared length over the limit fails now, before the client sends the body.
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > s.limits_.max_body_bytes) {
      s.fail(413,
             "request body larger than " + std::to_string(s.limits_.max_body_bytes) + " bytes");
      return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
      r.body.reserve(static_cast<size_t>(p->content_length));
    }
    const std::string* expect = r.header("expect");
    if (expect && r.version_minor >= 1) {
      if (!core::iequals(*expect, "100-continue")) {
        s.fail(417, "unsupported Expect header");
        return -1;
      }
      r.expect_continue = true;
      s.headers_done_ = true;
      http_parser_pause(p, 1);  // the caller may answer 100 Continue before the body
    }
    return 0;
  }

  static int on_body(::http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (s.request_.body.size() + n > s.limits_.max_body_bytes) {
      return s.fail(
          413, "request body larger than " + std::to_string(s.limits_.max_body_bytes) + " bytes");
    }
    s.request_.body.append(at, n);
    return 0;
  }

  static int on_message_complete(::http_parser* p) {
    RequestParser& s = self(p);
    s.complete_ = true;
    s.in_progress_ = false;
    // Upgrade (WebSocket, h2c) and CONNECT are not served: what follows is another protocol,
    // so the connection closes after the answer.
    if (p->upgrade) s.request_.keep_alive = false;
    http_parser_pause(p, 1);  // one request at a time: the next waits for take()
    return 0;
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings table = [] {
      http_parser_settings t;
      http_parser_settings_init(&t);
      t.on_message_begin = on_message_begin;
      t.on_url = on_url;
      t.on_header_field = on_header_field;
      t.on_header_value = on_header_value;
      t.on_headers_complete = on_headers_complete;
      t.on_body = on_body;
      t.on_message_complete = on_message_complete;
      return t;
    }();
    return table;
  }
};

RequestParser::RequestParser(ParseLimits limits)
    : limits_(limits), parser_(std::make_unique<::http_parser>()) {
  http_parser_init(parser_.get(), HTTP_REQUEST);
  parser_->data = this;
}

RequestParser::~RequestParser() = default;

int RequestParser::fail(int status, std::string reason) {
  if (status_ == 0) {
    status_ = status;
    error_ = std::move(reason);
  }
  return 1;  // a non-zero return stops http-parser with a callback error
}

RequestParser::Result RequestParser::feed(std::string_view data) {
  Result result;
  if (status_ != 0) {
    result.event = Event::Error;
    return result;
  }
  if (complete_) {
    result.event = Event::Complete;  // take() the request first
    return result;
  }
  if (HTTP_PARSER_ERRNO(parser_.get()) == HPE_PAUSED) http_parser_pause(parser_.get(), 0);
  if (data.empty()) return result;
  size_t n = http_parser_execute(parser_.get(), &Callbacks::settings(), data.data(), data.size());
  result.consumed = n;
  const auto err = HTTP_PARSER_ERRNO(parser_.get());
  if (status_ != 0) {
    result.event = Event::Error;
  } else if (err != HPE_OK && err != HPE_PAUSED) {
    fail(400, std::string("malformed request: ") + http_errno_description(err));
    result.event = Event::Error;
  } else if (complete_) {
    result.event = Event::Complete;
  } else if (headers_done_) {
    headers_done_ = false;
    result.event = Event::HeadersDone;
  }
  return result;
}

Request RequestParser::take() {
  complete_ = false;
  Request r = std::move(request_);
  request_ = Request{};
  return r;
}

}  // namespace starling::http
