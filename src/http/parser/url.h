// The request target: its path and query, percent-decoding, query parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::http {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct Target {
  std::string_view path;   // still percent-encoded: decode each segment after splitting
  std::string_view query;  // without the '?'
};

// Splits an origin-form ("/a/b?x=1") or absolute-form ("http://host/a/b?x=1") target.
// Null for anything else ("*", authority-form, an empty path).
std::optional<Target> split_target(std::string_view target);

// %XX decoding; with plus_as_space (query strings) '+' is a space. Null on a bad escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space);

// "a=1&b=x%20y&flag" -> {a,1}, {b,"x y"}, {flag,""}. Null on a bad escape.
std::optional<QueryParams> parse_query(std::string_view query);

// The value of the first parameter with this name, or null.
const std::string* find_param(const QueryParams& params, std::string_view name);

// Percent-encodes everything but unreserved characters (for links and tests).
std::string percent_encode(std::string_view text);

}  // namespace starling::http
