// HTTP status reason phrases and error codes, shared by the HTTP API's responses and the WebSocket
// upgrade's answers (which live in the self-contained parsing library).
#pragma once

namespace starling::http {

// "Not Found" for 404; a generic phrase for codes without their own.
const char* reason_phrase(int status);

// The "error" code of a JSON error body for a parsing or protocol failure with this status
// ("headers_too_large" for 431, "bad_request" for codes without their own).
const char* error_code(int status);

}  // namespace starling::http
