#include "http/dashboard.h"

#include "http/dashboard_assets.h"

namespace starling::http {

std::optional<Response> dashboard_file(std::string_view path) {
  Response r;
  if (path == "/") {
    r.content_type = "text/html; charset=utf-8";
    r.body = assets::kIndexHtml;
  } else if (path == "/dashboard.js") {
    r.content_type = "text/javascript; charset=utf-8";
    r.body = assets::kDashboardJs;
  } else if (path == "/dashboard.css") {
    r.content_type = "text/css; charset=utf-8";
    r.body = assets::kDashboardCss;
  } else {
    return std::nullopt;
  }
  // Only this origin's files and API; no framing (clickjacking of the kick button).
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace starling::http
