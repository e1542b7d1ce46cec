// Who a client is. Authentication is its own object, held by the Client and usable without a
// connection: it takes what the client offers and answers with a verdict; the Client turns
// verdicts into CONNACK, AUTH and DISCONNECT packets. The chain, in order (docs/configuration.md,
// "The authentication chain"):
//   1. a CONNECT with an Authentication Method: SCRAM-SHA-256 in AUTH packets (also for
//      re-authentication), against the password file;
//   2. a verified client certificate's user name (listeners with username_from_cert);
//   3. [auth.jwt]: a password (or user name) that is a JWT is verified, and decides; anything
//      else goes on;
//   4. [auth.http] connect_url: allow or deny decides; ignore (and a failure with on_error =
//      "ignore") goes on. The answer may take time: the verdict is Pending, and the Client
//      calls resume_connect with it;
//   5. the password file, for a CONNECT with a user name;
//   6. anonymous, where the listener allows it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/acl.h"
#include "auth/scram.h"
#include "broker/access_control.h"
#include "broker/external_auth.h"
#include "config/config.h"
#include "core/inline_string.h"
#include "core/peer_address.h"
#include "mqtt/packet.h"

namespace starling::broker {

// Where a client comes from, as far as authentication needs it.
struct ClientOrigin {
  std::string_view listener;                        // [listeners.NAME] it connected to
  std::optional<std::string> certificate_username;  // verified client certificate's CN
  core::PeerAddress address;  // formatted only when a log line or the HTTP service needs it
  bool bridge = false;        // a bridge of this broker: its identity is the config's, not asked
  std::string peer() const { return address.to_string(); }  // "address:port", for logs
};

// What a token or the HTTP service granted beyond the files: superuser, its own rules, and for
// a token, when the authorization ends.
struct Grant {
  bool superuser = false;
  std::shared_ptr<const auth::ClientRules> rules;
  std::optional<int64_t> expires_at;  // seconds since the epoch (JWT exp)
};

class Authenticator {
 public:
  // The SCRAM method of MQTT 5 enhanced authentication (the one supported).
  static constexpr std::string_view kScramMethod = "SCRAM-SHA-256";

  enum class Outcome : uint8_t {
    Accepted,  // the client is who it says (username() is set)
    Refused,   // reason_code and reason say why
    Continue,  // a SCRAM exchange goes on: send data in an AUTH 0x18
    Pending,   // the HTTP service was asked: resume_connect goes on with its answer
  };
  struct Verdict {
    Outcome outcome = Outcome::Refused;
    uint8_t reason_code = mqtt::reason::Success;  // Refused: for the CONNACK or DISCONNECT
    std::string reason;                           // Refused: for the log and Reason String
    // Authentication Data for the client: SCRAM server-first (Continue) or server-final
    // (Accepted at the end of an exchange, proving the server to the client).
    std::string data;
  };

  // settings: those in force when the connection started (they outlive this object).
  Authenticator(AccessControl& access, const config::Config& settings)
      : access_(access), settings_(settings) {}
  ~Authenticator();

  // At CONNECT: the user name and password, or the Authentication Method and Data (5.0).
  // on_answer: where the HTTP service's answer goes when it is not cached (any thread).
  Verdict connect(const mqtt::Connect& c, const ClientOrigin& origin,
                  std::function<void(ConnectAnswer)> on_answer = nullptr);
  // The HTTP service answered a Pending CONNECT.
  Verdict resume_connect(const mqtt::Connect& c, const ClientOrigin& origin,
                         const ConnectAnswer& answer);
  // An AUTH 0x18 during the CONNECT's SCRAM exchange, with its Authentication Data.
  Verdict continue_connect(std::string_view data, std::string_view peer);
  // Re-authentication (section 4.12.1): AUTH 0x19 starts it, AUTH 0x18 continues it. Must be
  // the same user; a refusal ends the connection (0x87).
  Verdict start_reauthentication(std::string_view data);
  Verdict continue_reauthentication(std::string_view data);

  // A SCRAM exchange is under way (CONNECT or re-authentication).
  bool exchanging() const { return scram_ != nullptr; }
  // The authenticated user name; empty for anonymous clients.
  std::string_view username() const { return username_.view(); }
  // The CONNECT's Authentication Method; empty when none (no re-authentication then). Only
  // SCRAM-SHA-256 is accepted, so a flag says it (no string in every client).
  std::string_view method() const { return scram_method_ ? kScramMethod : std::string_view(); }

  // What a token or the HTTP service granted; null when the client has nothing from them.
  const Grant* grant() const { return grant_.get(); }

  // The ACL of this user and client id from the ACL file in force now; null when there is no
  // ACL file (anything goes).
  std::shared_ptr<const auth::ClientAcl> compile_acl(std::string_view client_id) const;

 private:
  Verdict refuse(uint8_t reason_code, std::string reason);
  // Steps 3 (JWT) and 5, 6 of the chain.
  std::optional<Verdict> check_jwt(const mqtt::Connect& c, const ClientOrigin& origin);
  Verdict check_files(const mqtt::Connect& c, const ClientOrigin& origin);
  Verdict accept(std::string_view username);
  // Starts SCRAM from the client-first message; Continue with the server-first, or Refused.
  bool start_scram(std::shared_ptr<const auth::PasswordFile> passwords,
                   std::string_view client_first, Verdict& verdict);

  AccessControl& access_;
  const config::Config& settings_;
  core::InlineString username_;  // most user names fit in it: no allocation
  std::unique_ptr<auth::ScramServer> scram_;
  std::unique_ptr<Grant> grant_;  // on the heap: most clients have none
  bool scram_method_ = false;     // the CONNECT named SCRAM-SHA-256
};

}  // namespace starling::broker
