// HTTP status reason phrases, shared by the HTTP API's responses and the WebSocket upgrade's
// answers (which live in the self-contained parsing library).
#pragma once

namespace starling::http {

// "Not Found" for 404; a generic phrase for codes without their own.
const char* reason_phrase(int status);

}  // namespace starling::http
