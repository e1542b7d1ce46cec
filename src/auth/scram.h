// SCRAM-SHA-256 (RFC 5802, RFC 7677) server side, free of any transport, for MQTT 5 enhanced
// authentication with method "SCRAM-SHA-256":
//   CONNECT (Authentication Data = client-first)  -> start()  -> AUTH 0x18 with server-first
//   AUTH (Authentication Data = client-final)     -> finish() -> CONNACK 0x00 with server-final,
//                                                    or CONNACK 0x86 (BadCredentials) / 0x87
// Supported: gs2 header "n,," or "y,," (no channel binding: "p=" is refused), an authzid only
// when it equals the username, no mandatory extensions ("m="). Messages over
// kMaxScramMessageBytes are refused. An unknown user gets a normal-looking server-first (a salt
// derived from the username under a per-process key) and fails only at finish(), like a wrong
// password, so the exchange does not reveal which users exist.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "auth/password_hash.h"

namespace starling::auth {

inline constexpr size_t kMaxScramMessageBytes = 1024;

// Null for a user without SCRAM credentials (unknown, or a $6$/$7$ hash).
using ScramCredentialLookup =
    std::function<std::optional<ScramCredentials>(std::string_view username)>;

enum class ScramFailure {
  None,
  Malformed,       // not a message we accept (syntax, size, channel binding, c=/r= mismatch)
  BadCredentials,  // unknown user or wrong proof
  OutOfOrder,      // start() twice, finish() first, or any call after a failure or success
};

struct ScramStep {
  ScramFailure failure = ScramFailure::None;
  // On success the server-first or server-final message to send. On failure RFC 5802's
  // "e=<reason>" server-error, which a broker may send or drop.
  std::string message;
  // The authenticated user, set by a successful finish().
  std::string username;
  // Why it failed, for the log (may name the user; not meant for the client).
  std::string error;

  bool ok() const { return failure == ScramFailure::None; }
};

class ScramServer {
 public:
  // server_nonce makes the server's part of the nonce; by default 18 random bytes in base64.
  // Tests inject it to reproduce RFC 7677's example. It must be printable ASCII without ','.
  explicit ScramServer(ScramCredentialLookup lookup,
                       std::function<std::string()> server_nonce = nullptr);

  ScramStep start(std::string_view client_first);
  ScramStep finish(std::string_view client_final);

 private:
  enum class State { AwaitingClientFirst, AwaitingClientFinal, Done };

  ScramStep fail(ScramFailure failure, std::string_view server_error, std::string log_reason);

  ScramCredentialLookup lookup_;
  std::function<std::string()> server_nonce_;
  State state_ = State::AwaitingClientFirst;
  std::string username_;
  bool known_user_ = false;
  ScramCredentials credentials_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;
};

}  // namespace starling::auth
