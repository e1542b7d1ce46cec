// libFuzzer target for the HTTP request parsing wrapper (http/parser/request_parser over
// http-parser) and the URL and base64 helpers. The first input byte picks a chunk size: the same
// bytes are parsed whole and in chunks, and both must give the same requests and the same outcome.
// Each request's target goes through the URL functions, and base64 must round-trip. Any
// disagreement or broken limit traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base64.h"
#include "http/parser/request_parser.h"
#include "http/parser/url.h"

namespace {

using starling::http::ParseLimits;
using starling::http::Request;
using starling::http::RequestParser;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr ParseLimits kLimits{1024, 4096};

struct Outcome {
  std::vector<Request> requests;
  int error_status = 0;
};

// Parses data in pieces of `chunk` bytes the way a connection does: unconsumed bytes are kept
// and offered again with the next piece.
Outcome parse(std::string_view data, size_t chunk) {
  Outcome out;
  RequestParser p(kLimits);
  std::string pending;
  for (size_t i = 0; i < data.size() && out.error_status == 0; i += chunk) {
    pending.append(data.substr(i, chunk));
    for (;;) {
      auto r = p.feed(pending);
      check(r.consumed <= pending.size());
      pending.erase(0, r.consumed);
      if (r.event == RequestParser::Event::Complete) {
        Request req = p.take();
        check(req.body.size() <= kLimits.max_body_bytes);
        out.requests.push_back(std::move(req));
        continue;
      }
      if (r.event == RequestParser::Event::Error) {
        out.error_status = p.status();
        check(out.error_status >= 400 && out.error_status < 600);
        check(!p.error().empty());
        check(p.feed("more").consumed == 0);  // stays failed
        break;
      }
      if (r.event == RequestParser::Event::HeadersDone) continue;
      break;  // NeedMore
    }
  }
  return out;
}

bool same(const Request& a, const Request& b) {
  return a.method == b.method && a.target == b.target && a.headers == b.headers &&
         a.body == b.body && a.keep_alive == b.keep_alive && a.version_minor == b.version_minor &&
         a.expect_continue == b.expect_continue;
}

void urls(const std::string& target) {
  auto t = starling::http::split_target(target);
  if (!t) return;
  check(!t->path.empty() && t->path.front() == '/');
  auto q = starling::http::parse_query(t->query);
  if (q) {
    for (const auto& [name, value] : *q) {
      // Encoding then decoding gives back what was decoded.
      auto again = starling::http::percent_decode(starling::http::percent_encode(value), false);
      check(again && *again == value);
      (void)name;
    }
  }
  starling::http::percent_decode(t->path, false);
}

void base64(std::string_view data) {
  auto decoded = starling::core::base64_decode(data);
  if (decoded) {
    std::string encoded = starling::core::base64_encode(*decoded);
    auto again = starling::core::base64_decode(encoded);
    check(again && *again == *decoded);
    // The canonical form decodes to the same bytes as the input (padding is optional).
    std::string trimmed(data);
    while (!trimmed.empty() && trimmed.back() == '=')
      trimmed.pop_back();
    std::string canonical = encoded;
    while (!canonical.empty() && canonical.back() == '=')
      canonical.pop_back();
    check(trimmed == canonical);
  }
  check(starling::core::base64_decode(starling::core::base64_encode(data)) == std::string(data));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + bytes[0] % 17;
  std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);

  Outcome whole = parse(data, data.size() + 1);
  Outcome pieces = parse(data, chunk);
  // Where input is cut must not change what is parsed. Only the reason of an error may
  // differ: http-parser reports a URL or header piece when its buffer ends, so chunked input can
  // reach the size limit (431) before whole input reaches a bad byte further on (400).
  check(whole.requests.size() == pieces.requests.size());
  for (size_t i = 0; i < whole.requests.size(); ++i)
    check(same(whole.requests[i], pieces.requests[i]));
  check((whole.error_status == 0) == (pieces.error_status == 0));

  for (const Request& r : whole.requests)
    urls(r.target);
  base64(data.substr(0, 256));
  return 0;
}
