// Base64 (RFC 4648, standard alphabet) for hashes in password files and SCRAM attributes.
// Kept here rather than shared with src/http so starling_auth stays a self-contained library.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace starling::auth {

// Padding is optional; whitespace, the URL-safe alphabet or non-zero bits after the last
// character are errors. Null when text is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace starling::auth
