// Base64 (RFC 4648, standard alphabet): binary payloads in JSON, SCRAM messages, password
// hashes, the WebSocket handshake.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace starling::core {

// Padding is optional; whitespace, the URL-safe alphabet or bits after the last character
// are errors. Null when text is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace starling::core
