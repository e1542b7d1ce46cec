// Authentication without a connection: passwords, certificate user names, anonymous clients
// per listener, SCRAM-SHA-256 at CONNECT and re-authentication, each with the reason code the
// Client sends, and the ACL compiled for whoever was authenticated.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "auth/password_hash.h"
#include "broker/access_control.h"
#include "broker/authenticator.h"
#include "config/config.h"
#include "scram_client.h"

namespace starling::broker {
namespace {

namespace rc = mqtt::reason;
using Outcome = Authenticator::Outcome;

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("starling-authenticator-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    settings_ = config::defaults();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // A password file with "alice" ($7$) and "scram" ($scram-sha-256$), and an ACL file.
  void with_files() {
    using auth::HashKind;
    using auth::PasswordHash;
    settings_.auth.password_file = write(
        "passwd",
        "alice:" + PasswordHash::create("secret", HashKind::Pbkdf2Sha512).to_string() +
            "\nscram:" + PasswordHash::create("pencil", HashKind::ScramSha256).to_string() + "\n");
    settings_.auth.acl_file = write("acl", "user alice\ntopic write alice/#\n");
    access_.load(settings_.auth);
  }

  static mqtt::Connect connect(std::optional<std::string> user = std::nullopt,
                               std::optional<std::string> password = std::nullopt) {
    mqtt::Connect c;
    c.version = mqtt::Version::V5;
    c.client_id = "c1";
    c.username = std::move(user);
    c.password = std::move(password);
    return c;
  }
  static mqtt::Connect scram_connect(std::string client_first) {
    mqtt::Connect c = connect();
    c.properties.authentication_method = "SCRAM-SHA-256";
    c.properties.authentication_data = std::move(client_first);
    return c;
  }
  static ClientOrigin origin(std::optional<std::string> certificate_user = std::nullopt) {
    return ClientOrigin{"mqtt", std::move(certificate_user), core::PeerAddress("127.0.0.1:1")};
  }

  std::filesystem::path dir_;
  config::Config settings_;
  AccessControl access_;
};

TEST_F(AuthenticatorTest, AnonymousWithoutAPasswordFile) {
  access_.load(settings_.auth);
  Authenticator a(access_, settings_);
  EXPECT_EQ(a.connect(connect(), origin()).outcome, Outcome::Accepted);
  EXPECT_EQ(a.username(), "");
  // A name nothing can check is taken as given where anonymous clients are allowed.
  Authenticator named(access_, settings_);
  EXPECT_EQ(named.connect(connect("bob"), origin()).outcome, Outcome::Accepted);
  EXPECT_EQ(named.username(), "bob");
  EXPECT_FALSE(named.compile_acl("c1"));  // no ACL file: anything goes
}

TEST_F(AuthenticatorTest, AnonymousRefusedPerListener) {
  settings_.listeners[0].allow_anonymous = false;
  access_.load(settings_.auth);
  Authenticator a(access_, settings_);
  auto v = a.connect(connect(), origin());
  EXPECT_EQ(v.outcome, Outcome::Refused);
  EXPECT_EQ(v.reason_code, rc::NotAuthorized);
  EXPECT_EQ(v.reason, "anonymous clients are not allowed");
  Authenticator named(access_, settings_);
  EXPECT_EQ(named.connect(connect("bob"), origin()).reason,
            "user name cannot be verified (no password file)");
}

TEST_F(AuthenticatorTest, Passwords) {
  with_files();
  Authenticator good(access_, settings_);
  EXPECT_EQ(good.connect(connect("alice", "secret"), origin()).outcome, Outcome::Accepted);
  EXPECT_EQ(good.username(), "alice");
  auto acl = good.compile_acl("c1");
  ASSERT_TRUE(acl);
  EXPECT_TRUE(acl->can_publish("alice/x"));
  EXPECT_FALSE(acl->can_publish("bob/x"));

  for (auto c : {connect("alice", "wrong"), connect("alice"), connect("nobody", "secret")}) {
    Authenticator bad(access_, settings_);
    auto v = bad.connect(c, origin());
    EXPECT_EQ(v.outcome, Outcome::Refused);
    EXPECT_EQ(v.reason_code, rc::BadUserNameOrPassword);
  }
  // With a password file, anonymous clients are refused by default.
  Authenticator anonymous(access_, settings_);
  EXPECT_EQ(anonymous.connect(connect(), origin()).reason_code, rc::NotAuthorized);
}

TEST_F(AuthenticatorTest, CertificateUserNameNeedsNoPassword) {
  with_files();
  Authenticator a(access_, settings_);
  EXPECT_EQ(a.connect(connect("ignored"), origin("alice")).outcome, Outcome::Accepted);
  EXPECT_EQ(a.username(), "alice");
}

TEST_F(AuthenticatorTest, MethodsOtherThanScramAreRefused) {
  Authenticator without_file(access_, settings_);
  EXPECT_EQ(without_file.connect(scram_connect("n,,n=scram,r=abc"), origin()).reason_code,
            rc::BadAuthenticationMethod);
  with_files();
  mqtt::Connect c = scram_connect("x");
  c.properties.authentication_method = "KERBEROS";
  Authenticator a(access_, settings_);
  EXPECT_EQ(a.connect(c, origin()).reason_code, rc::BadAuthenticationMethod);
}

TEST_F(AuthenticatorTest, ScramAtConnectAndReauthentication) {
  with_files();
  Authenticator a(access_, settings_);
  auth::ScramClient client("scram", "pencil", "nonce1");
  auto first = a.connect(scram_connect(client.first()), origin());
  ASSERT_EQ(first.outcome, Outcome::Continue);
  EXPECT_TRUE(a.exchanging());
  EXPECT_EQ(a.method(), "SCRAM-SHA-256");
  auto final_message = client.client_final(first.data);
  ASSERT_TRUE(final_message);
  auto done = a.continue_connect(*final_message, "peer");
  ASSERT_EQ(done.outcome, Outcome::Accepted);
  EXPECT_TRUE(client.server_final_ok(done.data));  // the server proved itself
  EXPECT_EQ(a.username(), "scram");
  EXPECT_FALSE(a.exchanging());

  // Re-authentication as the same user.
  auth::ScramClient again("scram", "pencil", "nonce2");
  auto step = a.start_reauthentication(again.first());
  ASSERT_EQ(step.outcome, Outcome::Continue);
  auto end = a.continue_reauthentication(*again.client_final(step.data));
  EXPECT_EQ(end.outcome, Outcome::Accepted);
  EXPECT_TRUE(again.server_final_ok(end.data));

  // A wrong password ends it with 0x87.
  auth::ScramClient wrong("scram", "pencil2", "nonce3");
  step = a.start_reauthentication(wrong.first());
  ASSERT_EQ(step.outcome, Outcome::Continue);
  end = a.continue_reauthentication(*wrong.client_final(step.data));
  EXPECT_EQ(end.outcome, Outcome::Refused);
  EXPECT_EQ(end.reason_code, rc::NotAuthorized);
}

TEST_F(AuthenticatorTest, ScramWithAWrongPasswordAtConnect) {
  with_files();
  Authenticator a(access_, settings_);
  auth::ScramClient client("scram", "wrong", "nonce1");
  auto first = a.connect(scram_connect(client.first()), origin());
  ASSERT_EQ(first.outcome, Outcome::Continue);
  auto done = a.continue_connect(*client.client_final(first.data), "peer");
  EXPECT_EQ(done.outcome, Outcome::Refused);
  EXPECT_EQ(done.reason_code, rc::BadUserNameOrPassword);
  // A client-first that is not SCRAM at all: refused at once.
  Authenticator b(access_, settings_);
  EXPECT_EQ(b.connect(scram_connect("garbage"), origin()).reason_code, rc::NotAuthorized);
}

}  // namespace
}  // namespace starling::broker
