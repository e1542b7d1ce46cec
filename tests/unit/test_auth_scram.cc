// SCRAM-SHA-256 server against an in-test client: RFC 7677's example exchange byte for byte,
// then the failure paths (wrong password, unknown user, tampered messages, bad syntax).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "auth/crypto.h"
#include "auth/password_file.h"
#include "auth/scram.h"
#include "core/base64.h"
#include "scram_client.h"

namespace starling::auth {
namespace {

// RFC 7677 section 3.
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
    "Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// "user"/"pencil" with RFC 7677's salt and iteration count.
ScramCredentialLookup rfc_lookup() {
  return [](std::string_view username) -> std::optional<ScramCredentials> {
    if (username != "user") return std::nullopt;
    return make_scram_credentials("pencil", *core::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  };
}

ScramServer rfc_server() {
  return ScramServer(rfc_lookup(), [] { return std::string(kServerNonce); });
}

TEST(Scram, Rfc7677Example) {
  ScramServer server = rfc_server();
  const ScramStep first = server.start(kClientFirst);
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.message, kServerFirst);
  const ScramStep last = server.finish(kClientFinal);
  ASSERT_TRUE(last.ok()) << last.error;
  EXPECT_EQ(last.message, kServerFinal);
  EXPECT_EQ(last.username, "user");
  // Done: nothing more is accepted.
  EXPECT_EQ(server.finish(kClientFinal).failure, ScramFailure::OutOfOrder);
  EXPECT_EQ(server.start(kClientFirst).failure, ScramFailure::OutOfOrder);
}

TEST(Scram, ClientReproducesRfcMessages) {
  ScramClient client("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(client.first(), kClientFirst);
  EXPECT_EQ(client.client_final(kServerFirst), kClientFinal);
  EXPECT_TRUE(client.server_final_ok(kServerFinal));
}

// The whole way from a password file with random nonces and salts.
TEST(Scram, FullExchangeFromPasswordFile) {
  const PasswordFile file = PasswordFile::parse(
      "a,b=c:" + PasswordHash::create("s3cret", HashKind::ScramSha256).to_string() +
          "\nmosq:" + PasswordHash::create("s3cret", HashKind::Pbkdf2Sha512).to_string() + "\n",
      "pw");
  auto lookup = [&file](std::string_view user) { return file.scram_credentials(user); };

  for (const char* gs2 : {"n,,", "y,,", "n,a=a=2Cb=3Dc,"}) {
    ScramServer server(lookup);
    ScramClient client("a,b=c", "s3cret", "fyko+d2lbbFgONRv9qkxdawL", gs2);
    const ScramStep first = server.start(client.first());
    ASSERT_TRUE(first.ok()) << first.error;
    // Client nonce plus 18 random bytes in base64.
    EXPECT_TRUE(first.message.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
    EXPECT_EQ(first.message.find(','), std::string_view("r=fyko+d2lbbFgONRv9qkxdawL").size() + 24);
    const auto final_message = client.client_final(first.message);
    ASSERT_TRUE(final_message);
    const ScramStep last = server.finish(*final_message);
    ASSERT_TRUE(last.ok()) << last.error;
    EXPECT_EQ(last.username, "a,b=c");
    EXPECT_TRUE(client.server_final_ok(last.message));
  }

  // Two servers choose different nonces.
  ScramServer one(lookup), two(lookup);
  EXPECT_NE(one.start("n,,n=mosq,r=abc").message, two.start("n,,n=mosq,r=abc").message);
}

TEST(Scram, WrongPasswordFailsAtFinish) {
  ScramServer server = rfc_server();
  ScramClient client("user", "pencil2", "rOprNGfwEbeRWgbNEkqO");
  const ScramStep first = server.start(client.first());
  ASSERT_TRUE(first.ok());
  const ScramStep last = server.finish(*client.client_final(first.message));
  EXPECT_EQ(last.failure, ScramFailure::BadCredentials);
  EXPECT_EQ(last.message, "e=invalid-proof");
  EXPECT_TRUE(last.username.empty());
}

TEST(Scram, UnknownUserLooksLikeAKnownOne) {
  auto server_first_for = [](std::string_view user) {
    ScramServer server(rfc_lookup(), [] { return std::string("SERVER"); });
    return server.start("n,,n=" + std::string(user) + ",r=abc").message;
  };
  const std::string ghost = server_first_for("ghost");
  // Same shape as a real answer (16-byte salt, RFC 7677's default count), stable per user,
  // different between users.
  EXPECT_TRUE(ghost.starts_with("r=abcSERVER,s="));
  EXPECT_TRUE(ghost.ends_with(",i=4096"));
  EXPECT_EQ(ghost.size(), server_first_for("user").size());
  EXPECT_EQ(ghost, server_first_for("ghost"));
  EXPECT_NE(ghost, server_first_for("ghost2"));

  ScramServer server(rfc_lookup());
  ScramClient client("ghost", "pencil", "abc");
  const ScramStep first = server.start(client.first());
  ASSERT_TRUE(first.ok());
  const ScramStep last = server.finish(*client.client_final(first.message));
  EXPECT_EQ(last.failure, ScramFailure::BadCredentials);
  EXPECT_EQ(last.message, "e=invalid-proof");
}

ScramFailure start_failure(std::string_view client_first) {
  ScramServer server = rfc_server();
  return server.start(client_first).failure;
}

TEST(Scram, RefusesBadClientFirst) {
  EXPECT_EQ(start_failure("n,,n=user,r=abc"), ScramFailure::None);
  EXPECT_EQ(start_failure("n,,n=user,r=abc,x=ext"), ScramFailure::None);
  EXPECT_EQ(start_failure("n,a=user,n=user,r=abc"), ScramFailure::None);
  EXPECT_EQ(start_failure("p=tls-unique,,n=user,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,a=admin,n=user,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,x=user,n=user,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,m=ext,n=user,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("x,,n=user,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,r=abc,n=user"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=user"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=us=er,r=abc"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=us=2cer,r=abc"),
            ScramFailure::Malformed);  // escapes are upper case
  EXPECT_EQ(start_failure("n,,n=user,r="), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=user,r=a b"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=user,r=abc,1=x"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure(std::string("n,,n=us\0er,r=abc", 16)), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n"), ScramFailure::Malformed);
  EXPECT_EQ(start_failure(""), ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=user,r=" + std::string(kMaxScramMessageBytes, 'a')),
            ScramFailure::Malformed);
  EXPECT_EQ(start_failure("n,,n=p=2C=3D,r=abc"), ScramFailure::None);
  EXPECT_EQ(start_failure("p=tls-unique,,n=user,r=abc"), ScramFailure::Malformed);
  ScramServer server = rfc_server();
  EXPECT_EQ(server.start("p=tls-unique,,n=user,r=abc").message, "e=channel-binding-not-supported");
  // A failed exchange stays failed.
  EXPECT_EQ(server.start(kClientFirst).failure, ScramFailure::OutOfOrder);
}

ScramStep finish_with(std::string_view client_final, std::string_view client_first = kClientFirst) {
  ScramServer server = rfc_server();
  EXPECT_TRUE(server.start(client_first).ok());
  return server.finish(client_final);
}

TEST(Scram, RefusesBadClientFinal) {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  EXPECT_TRUE(finish_with("c=biws," + nonce + proof).ok());
  // c= must be base64 of the gs2 header that was sent.
  EXPECT_EQ(finish_with("c=eSws," + nonce + proof).failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with("c=eSws," + nonce + proof).message, "e=channel-bindings-dont-match");
  EXPECT_EQ(finish_with("c=biws," + nonce + "x" + proof).failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with("c=biws,r=rOprNGfwEbeRWgbNEkqO" + proof).failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with("c=biws," + nonce).failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with("c=biws," + nonce + ",p=AAAA").failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with("c=biws," + nonce + ",p=!!").failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with(nonce + ",c=biws" + proof).failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with("c=biws," + nonce + ",7=x" + proof).failure, ScramFailure::Malformed);
  EXPECT_EQ(finish_with(std::string(kMaxScramMessageBytes + 1, 'c')).failure,
            ScramFailure::Malformed);
  // An extension is signed too: adding one breaks the proof.
  EXPECT_EQ(finish_with("c=biws," + nonce + ",x=1" + proof).failure, ScramFailure::BadCredentials);
  // One flipped proof bit.
  EXPECT_EQ(
      finish_with("c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=").failure,
      ScramFailure::BadCredentials);
  // y,, is accepted, and then c= must say so.
  EXPECT_EQ(finish_with("c=biws," + nonce + proof, "y,,n=user,r=rOprNGfwEbeRWgbNEkqO").failure,
            ScramFailure::Malformed);

  ScramServer server = rfc_server();
  EXPECT_EQ(server.finish(kClientFinal).failure, ScramFailure::OutOfOrder);
}

}  // namespace
}  // namespace starling::auth
