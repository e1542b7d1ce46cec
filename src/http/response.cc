#include "http/response.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <ctime>

namespace starling::http {

namespace {

// The Date header changes once a second: formatted once per second per thread.
std::string_view http_date() {
  thread_local std::time_t cached_at = 0;
  thread_local char text[64];
  thread_local size_t size = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_at) {
    std::tm tm;
    gmtime_r(&now, &tm);
    size = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_at = now;
  }
  return std::string_view(text, size);
}

}  // namespace

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response json_error(int status, std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", code}, {"message", message}};
  // Invalid UTF-8 from a request (a topic, a client id) is replaced, not thrown on.
  return json_response(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void serialize(const Response& r, bool keep_alive, bool head, unsigned version_minor,
               std::string& out) {
  char number[24];
  auto append_number = [&](uint64_t n) {
    auto [end, ec] = std::to_chars(number, number + sizeof number, n);
    out.append(number, end);
  };
  out += version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(static_cast<uint64_t>(r.status));
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\nDate: ";
  out += http_date();
  out += "\r\nServer: starling\r\n";
  if (!r.content_type.empty()) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  append_number(r.body.size());
  out += "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  // HTTP/1.1 keeps the connection by default, HTTP/1.0 closes it.
  if (!keep_alive && version_minor >= 1) out += "Connection: close\r\n";
  if (keep_alive && version_minor == 0) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!head) out += r.body;
}

}  // namespace starling::http
