// The web dashboard at / on the HTTP port: its static files, compiled into the binary. The
// page reads the public API (read scope) and kicks clients with it (admin scope).
#pragma once

#include <optional>
#include <string_view>

#include "http/response.h"

namespace starling::http {

// The file for a GET of path ("/", "/dashboard.js", "/dashboard.css"); nullopt for others.
std::optional<Response> dashboard_file(std::string_view path);

}  // namespace starling::http
