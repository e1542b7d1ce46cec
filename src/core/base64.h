// Base64 (RFC 4648, standard alphabet): binary payloads in JSON, SCRAM messages, password
// hashes, the WebSocket handshake. Base64url (RFC 4648 section 5, without padding as JWS and JWK
// write it, RFC 7515 section 2): JSON Web Tokens and keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace starling::core {

// Padding is optional; whitespace, the URL-safe alphabet or bits after the last character
// are errors. Null when text is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

// The URL-safe alphabet ('-' and '_') and no padding: '=', whitespace, the standard alphabet's
// '+' and '/', or bits after the last character are errors. Null when text is not valid.
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64url_encode(std::string_view bytes);

}  // namespace starling::core
