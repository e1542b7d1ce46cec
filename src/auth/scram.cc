#include "auth/scram.h"

#include <vector>

#include "auth/crypto.h"
#include "core/base64.h"
#include "core/text.h"

namespace starling::auth {
namespace {

constexpr size_t kServerNonceBytes = 18;
constexpr size_t kKeyBytes = 32;
constexpr size_t kFakeSaltBytes = 16;

// Fixed per process, so repeated attempts for one unknown user see the same salt, as they
// would for a real one.
const std::string& process_key() {
  static const std::string key = random_bytes(kKeyBytes);
  return key;
}

// RFC 5802 saslname: "=2C" is ',', "=3D" is '=', any other '=' or a NUL is invalid.
std::optional<std::string> unescape_saslname(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') return std::nullopt;
    if (text[i] != '=') {
      out += text[i];
      continue;
    }
    const std::string_view escape = text.substr(i + 1, 2);
    if (escape == "2C") {
      out += ',';
    } else if (escape == "3D") {
      out += '=';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

// printable = %x21-2B / %x2D-7E
bool valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7E || c == ',') return false;
  }
  return true;
}

// attr-val = ALPHA "=" value
bool is_extension(std::string_view field) {
  return field.size() >= 2 && field[1] == '=' &&
         ((field[0] >= 'a' && field[0] <= 'z') || (field[0] >= 'A' && field[0] <= 'Z'));
}

std::string default_server_nonce() {
  return core::base64_encode(random_bytes(kServerNonceBytes));
}

}  // namespace

ScramServer::ScramServer(ScramCredentialLookup lookup, std::function<std::string()> server_nonce)
    : lookup_(std::move(lookup)),
      server_nonce_(server_nonce ? std::move(server_nonce) : default_server_nonce) {}

ScramStep ScramServer::fail(ScramFailure failure, std::string_view server_error,
                            std::string log_reason) {
  state_ = State::Done;
  ScramStep step;
  step.failure = failure;
  step.message = "e=" + std::string(server_error);
  step.error = std::move(log_reason);
  return step;
}

ScramStep ScramServer::start(std::string_view client_first) {
  if (state_ != State::AwaitingClientFirst) {
    return fail(ScramFailure::OutOfOrder, "other-error", "client-first out of order");
  }
  if (client_first.size() > kMaxScramMessageBytes) {
    return fail(ScramFailure::Malformed, "other-error", "client-first too long");
  }

  // gs2-header = gs2-cbind-flag "," [authzid] ","
  const size_t first_comma = client_first.find(',');
  const size_t second_comma = first_comma == std::string_view::npos
                                  ? std::string_view::npos
                                  : client_first.find(',', first_comma + 1);
  if (second_comma == std::string_view::npos) {
    return fail(ScramFailure::Malformed, "invalid-encoding", "client-first without gs2 header");
  }
  const std::string_view cbind_flag = client_first.substr(0, first_comma);
  const std::string_view authzid =
      client_first.substr(first_comma + 1, second_comma - first_comma - 1);
  if (cbind_flag.starts_with("p=")) {
    return fail(ScramFailure::Malformed, "channel-binding-not-supported",
                "client asked for channel binding");
  }
  if (cbind_flag != "n" && cbind_flag != "y") {
    return fail(ScramFailure::Malformed, "invalid-encoding", "bad gs2 channel binding flag");
  }

  const std::vector<std::string_view> fields =
      core::split(client_first.substr(second_comma + 1), ',');
  if (!fields.empty() && fields[0].starts_with("m=")) {
    return fail(ScramFailure::Malformed, "extensions-not-supported", "mandatory extension");
  }
  if (fields.size() < 2 || !fields[0].starts_with("n=") || !fields[1].starts_with("r=")) {
    return fail(ScramFailure::Malformed, "invalid-encoding", "client-first needs n= and r=");
  }
  for (size_t i = 2; i < fields.size(); ++i) {
    if (!is_extension(fields[i])) {
      return fail(ScramFailure::Malformed, "invalid-encoding", "bad attribute in client-first");
    }
  }
  std::optional<std::string> username = unescape_saslname(fields[0].substr(2));
  if (!username || username->empty()) {
    return fail(ScramFailure::Malformed, "invalid-username-encoding", "bad username encoding");
  }
  if (!authzid.empty()) {
    const std::optional<std::string> authorize_as =
        authzid.starts_with("a=") ? unescape_saslname(authzid.substr(2)) : std::nullopt;
    if (!authorize_as) {
      return fail(ScramFailure::Malformed, "invalid-encoding", "bad authzid");
    }
    if (*authorize_as != *username) {
      return fail(ScramFailure::Malformed, "other-error",
                  "authzid differs from the username (not supported)");
    }
  }
  const std::string_view client_nonce = fields[1].substr(2);
  if (!valid_nonce(client_nonce)) {
    return fail(ScramFailure::Malformed, "invalid-encoding", "bad client nonce");
  }

  username_ = std::move(*username);
  std::optional<ScramCredentials> credentials = lookup_(username_);
  known_user_ = credentials.has_value();
  if (known_user_) {
    credentials_ = std::move(*credentials);
  } else {
    // Same shape as a real answer; finish() fails whatever the proof.
    credentials_.salt = hmac_sha256(process_key(), "salt:" + username_).substr(0, kFakeSaltBytes);
    credentials_.iterations = kDefaultScramIterations;
    credentials_.stored_key = hmac_sha256(process_key(), "stored-key:" + username_);
    credentials_.server_key = hmac_sha256(process_key(), "server-key:" + username_);
  }

  gs2_header_ = std::string(client_first.substr(0, second_comma + 1));
  client_first_bare_ = std::string(client_first.substr(second_comma + 1));
  nonce_ = std::string(client_nonce) + server_nonce_();
  server_first_ = "r=" + nonce_ + ",s=" + core::base64_encode(credentials_.salt) +
                  ",i=" + std::to_string(credentials_.iterations);
  state_ = State::AwaitingClientFinal;
  ScramStep step;
  step.message = server_first_;
  return step;
}

ScramStep ScramServer::finish(std::string_view client_final) {
  if (state_ != State::AwaitingClientFinal) {
    return fail(ScramFailure::OutOfOrder, "other-error", "client-final out of order");
  }
  if (client_final.size() > kMaxScramMessageBytes) {
    return fail(ScramFailure::Malformed, "other-error", "client-final too long");
  }

  // The proof comes last; everything before it is signed.
  const size_t proof_at = client_final.rfind(",p=");
  if (proof_at == std::string_view::npos) {
    return fail(ScramFailure::Malformed, "invalid-encoding", "client-final without proof");
  }
  const std::string_view without_proof = client_final.substr(0, proof_at);
  const std::optional<std::string> proof = core::base64_decode(client_final.substr(proof_at + 3));
  if (!proof || proof->size() != kKeyBytes) {
    return fail(ScramFailure::Malformed, "invalid-encoding", "bad proof encoding");
  }
  const std::vector<std::string_view> fields = core::split(without_proof, ',');
  if (fields.size() < 2 || !fields[0].starts_with("c=") || !fields[1].starts_with("r=")) {
    return fail(ScramFailure::Malformed, "invalid-encoding", "client-final needs c= and r=");
  }
  for (size_t i = 2; i < fields.size(); ++i) {
    if (!is_extension(fields[i])) {
      return fail(ScramFailure::Malformed, "invalid-encoding", "bad attribute in client-final");
    }
  }
  // Without channel binding the cbind-input is the gs2 header itself.
  const std::optional<std::string> channel_binding = core::base64_decode(fields[0].substr(2));
  if (!channel_binding || *channel_binding != gs2_header_) {
    return fail(ScramFailure::Malformed, "channel-bindings-dont-match",
                "c= does not match the gs2 header");
  }
  if (fields[1].substr(2) != nonce_) {
    return fail(ScramFailure::Malformed, "other-error", "nonce does not match");
  }

  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const std::string client_signature = hmac_sha256(credentials_.stored_key, auth_message);
  const std::string client_key = xor_bytes(*proof, client_signature);
  const bool proof_ok = constant_time_equal(sha256(client_key), credentials_.stored_key);
  if (!known_user_ || !proof_ok) {
    return fail(ScramFailure::BadCredentials, "invalid-proof",
                known_user_ ? "wrong proof for user '" + username_ + "'"
                            : "unknown user '" + username_ + "'");
  }

  state_ = State::Done;
  ScramStep step;
  step.message = "v=" + core::base64_encode(hmac_sha256(credentials_.server_key, auth_message));
  step.username = username_;
  return step;
}

}  // namespace starling::auth
