// Password hashes and files (Mosquitto's $6$/$7$ and our $scram-sha-256$), checked against
// mosquitto_passwd when it is installed, and the file editing behind `starling passwd`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "app/passwd_command.h"
#include "auth/password_file.h"
#include "auth/password_hash.h"
#include "core/base64.h"
#include "skip_in_ci.h"

namespace starling::auth {
namespace {

namespace fs = std::filesystem;

// Made by mosquitto_passwd 2.0 (`-c -b`, and `-H sha512 -b`), password "pass".
constexpr std::string_view kMosquitto7 =
    "$7$101$Z36F+BsXEoExslon$rDrcPa92vLLSRc7LXxd9UPLvD104Wv74tTxp7n32O800NNbyJlarZv5bGR9lo376F89Kf+"
    "TC/XHB9bFt3rPf7A==";
constexpr std::string_view kMosquitto6 =
    "$6$jJQ30gHB5bJoBJl+$1nSqMFubNUHzIflnqNwUwk87dKbr2pZJ8T4mTrcJxHHHal/"
    "BlgajBme0glKFs1GQoq9FqkbGg5AlZlz2NaxtdQ==";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "starling-auth-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string load_error(std::string_view text) {
  try {
    PasswordFile::parse(text, "pw");
  } catch (const LoadError& e) {
    return e.what();
  }
  return "no error";
}

TEST(PasswordHash, MosquittoVectors) {
  const PasswordHash seven = PasswordHash::parse(kMosquitto7);
  EXPECT_EQ(seven.kind(), HashKind::Pbkdf2Sha512);
  EXPECT_EQ(seven.iterations(), 101u);
  EXPECT_TRUE(seven.verify("pass"));
  EXPECT_FALSE(seven.verify("pas"));
  EXPECT_FALSE(seven.verify("pass "));
  EXPECT_EQ(seven.to_string(), kMosquitto7);

  const PasswordHash six = PasswordHash::parse(kMosquitto6);
  EXPECT_EQ(six.kind(), HashKind::Sha512);
  EXPECT_TRUE(six.verify("pass"));
  EXPECT_FALSE(six.verify("Pass"));
  EXPECT_EQ(six.to_string(), kMosquitto6);
  EXPECT_FALSE(six.scram_credentials());
}

TEST(PasswordHash, CreateRoundTripsEveryKind) {
  for (HashKind kind : {HashKind::Sha512, HashKind::Pbkdf2Sha512, HashKind::ScramSha256}) {
    const PasswordHash made = PasswordHash::create("s3cret:with$odd,chars", kind);
    const PasswordHash parsed = PasswordHash::parse(made.to_string());
    EXPECT_EQ(parsed.kind(), kind);
    EXPECT_EQ(parsed.to_string(), made.to_string());
    EXPECT_TRUE(parsed.verify("s3cret:with$odd,chars"));
    EXPECT_FALSE(parsed.verify("s3cret"));
    EXPECT_FALSE(parsed.verify(""));
  }
  EXPECT_TRUE(PasswordHash::create("x", HashKind::Pbkdf2Sha512).to_string().starts_with("$7$101$"));
  EXPECT_TRUE(PasswordHash::create("x", HashKind::ScramSha256)
                  .to_string()
                  .starts_with("$scram-sha-256$4096$"));
  EXPECT_TRUE(
      PasswordHash::create("x", HashKind::Pbkdf2Sha512, 5000).to_string().starts_with("$7$5000$"));
  // Fresh salt every time.
  EXPECT_NE(PasswordHash::create("x", HashKind::Sha512).to_string(),
            PasswordHash::create("x", HashKind::Sha512).to_string());
  EXPECT_THROW(PasswordHash::create("x", HashKind::Pbkdf2Sha512, kMaxHashIterations + 1),
               std::invalid_argument);
}

TEST(PasswordHash, ScramCredentialsMatchRfc7677Inputs) {
  const std::string salt = *core::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  const PasswordHash hash =
      PasswordHash::create_with_salt("pencil", HashKind::ScramSha256, 4096, salt);
  const auto credentials = hash.scram_credentials();
  ASSERT_TRUE(credentials);
  // Computed independently (Python's hashlib) from RFC 7677's example inputs.
  EXPECT_EQ(credentials->salt, salt);
  EXPECT_EQ(credentials->iterations, 4096u);
  EXPECT_EQ(core::base64_encode(credentials->stored_key),
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=");
  EXPECT_EQ(core::base64_encode(credentials->server_key),
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
  EXPECT_EQ(credentials->stored_key.size(), 32u);
  EXPECT_TRUE(hash.verify("pencil"));
  EXPECT_FALSE(hash.verify("pencil2"));
}

TEST(PasswordHash, ParseErrors) {
  auto reason = [](std::string_view text) -> std::string {
    try {
      PasswordHash::parse(text);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(reason("plaintext"), "not a '$'-prefixed hash");
  EXPECT_EQ(reason("$5$abc$def"), "unknown hash kind '$5$'");
  EXPECT_EQ(reason("$7$101$Z36F+BsXEoExslon"), "$7$ hash needs $7$<iterations>$<salt>$<hash>");
  EXPECT_EQ(reason("$7$0$Z36F$AAAA"), "bad iteration count '0'");
  EXPECT_EQ(reason("$7$-1$Z36F$AAAA"), "bad iteration count '-1'");
  EXPECT_EQ(reason("$7$1000001$Z36F$AAAA"), "iteration count 1000001 above the maximum 1000000");
  EXPECT_EQ(reason("$7$101$Z3 6F$AAAA"), "bad base64 in salt");
  EXPECT_EQ(reason("$7$101$Z36F$AAAA"), "hash is 3 bytes, expected 64");
  EXPECT_EQ(reason("$6$$AAAA"), "salt must be 1 to 256 bytes");
  EXPECT_EQ(reason("$scram-sha-256$4096$c2FsdA==$AAAA$AAAA"), "StoredKey is 3 bytes, expected 32");
}

TEST(PasswordFile, ParsesMosquittoFiles) {
  const std::string text = "# made by mosquitto_passwd\n\nuser:" + std::string(kMosquitto7) +
                           "\r\nu6:" + std::string(kMosquitto6) + "  \n" + "scram:" +
                           PasswordHash::create("pencil", HashKind::ScramSha256).to_string();
  const PasswordFile file = PasswordFile::parse(text, "pw");
  EXPECT_EQ(file.size(), 3u);
  EXPECT_TRUE(file.check("user", "pass"));
  EXPECT_FALSE(file.check("user", "wrong"));
  EXPECT_TRUE(file.check("u6", "pass"));
  EXPECT_FALSE(file.check("u6", ""));
  EXPECT_TRUE(file.check("scram", "pencil"));
  EXPECT_FALSE(file.check("nobody", "pass"));
  EXPECT_FALSE(file.check("", "pass"));
  EXPECT_EQ(file.lookup("nobody"), nullptr);
  ASSERT_NE(file.lookup("user"), nullptr);
  EXPECT_EQ(file.lookup("user")->kind(), HashKind::Pbkdf2Sha512);
  EXPECT_FALSE(file.scram_credentials("user"));
  EXPECT_FALSE(file.scram_credentials("nobody"));
  ASSERT_TRUE(file.scram_credentials("scram"));
  EXPECT_EQ(file.scram_credentials("scram")->iterations, 4096u);
  EXPECT_EQ(PasswordFile::parse("", "pw").size(), 0u);
}

TEST(PasswordFile, ErrorsNameFileAndLine) {
  EXPECT_EQ(load_error("# c\nuser\n"), "pw:2: missing ':' between user and hash");
  EXPECT_EQ(load_error(":" + std::string(kMosquitto7)), "pw:1: empty user name");
  EXPECT_EQ(load_error("a:" + std::string(kMosquitto7) + "\n\na:" + std::string(kMosquitto6)),
            "pw:3: duplicate user 'a'");
  EXPECT_EQ(load_error("a:$9$x$y"), "pw:1: unknown hash kind '$9$'");
  EXPECT_EQ(load_error("a:plain"), "pw:1: not a '$'-prefixed hash");
  EXPECT_EQ(load_error("\n\n\na:$6$!!$AAAA"), "pw:4: bad base64 in salt");
  EXPECT_EQ(load_error("a:$7$2000000$Z36F$AAAA"),
            "pw:1: iteration count 2000000 above the maximum 1000000");
}

TEST(PasswordFile, LoadFromDisk) {
  TempDir dir;
  write_text(dir.file("pw"), "user:" + std::string(kMosquitto7) + "\n");
  EXPECT_TRUE(PasswordFile::load(dir.file("pw")).check("user", "pass"));
  try {
    PasswordFile::load(dir.file("missing"));
    FAIL() << "no error";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("missing") + ": No such file or directory");
  }
}

// The real tool makes the file; we must accept its hashes.
TEST(PasswordFile, AcceptsMosquittoPasswdOutput) {
  const char* tool = "/usr/bin/mosquitto_passwd";
  if (access(tool, X_OK) != 0) STARLING_SKIP_OR_FAIL_IN_CI("mosquitto_passwd not installed");
  TempDir dir;
  const std::string path = dir.file("pw");
  const std::string base = std::string(tool) + " ";
  ASSERT_EQ(std::system((base + "-c -b '" + path + "' alice 'Wonder land'").c_str()), 0);
  ASSERT_EQ(std::system((base + "-H sha512 -b '" + path + "' bob hunter2").c_str()), 0);
  const PasswordFile file = PasswordFile::load(path);
  ASSERT_EQ(file.size(), 2u);
  EXPECT_EQ(file.lookup("alice")->kind(), HashKind::Pbkdf2Sha512);
  EXPECT_EQ(file.lookup("bob")->kind(), HashKind::Sha512);
  EXPECT_TRUE(file.check("alice", "Wonder land"));
  EXPECT_FALSE(file.check("alice", "Wonderland"));
  EXPECT_TRUE(file.check("bob", "hunter2"));
  EXPECT_FALSE(file.check("bob", "hunter3"));
}

}  // namespace
}  // namespace starling::auth

namespace starling::app {
namespace {

using auth::TempDir;

PasswdOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), "passwd");
  std::vector<char*> argv;
  for (std::string& arg : args)
    argv.push_back(arg.data());
  return parse_passwd_args(static_cast<int>(argv.size()), argv.data());
}

TEST(PasswdCommand, ParsesArguments) {
  PasswdOptions o = parse({"-c", "-b", "-I", "2000", "f", "u", "p"});
  EXPECT_TRUE(o.create);
  EXPECT_TRUE(o.batch);
  EXPECT_FALSE(o.remove);
  EXPECT_EQ(o.iterations, 2000u);
  EXPECT_EQ(o.file, "f");
  EXPECT_EQ(o.user, "u");
  EXPECT_EQ(o.password, "p");

  o = parse({"--scram", "f", "u"});
  EXPECT_TRUE(o.scram);
  EXPECT_FALSE(o.password);

  o = parse({"-D", "f", "u"});
  EXPECT_TRUE(o.remove);
  o = parse({"-b", "f", "u", "--", "-dash"});
  EXPECT_EQ(o.password, "-dash");
  EXPECT_TRUE(parse({"--help"}).help);

  EXPECT_THROW(parse({"f"}), std::invalid_argument);
  EXPECT_THROW(parse({"f", "u", "p"}), std::invalid_argument);  // needs -b
  EXPECT_THROW(parse({"-b", "f", "u"}), std::invalid_argument);
  EXPECT_THROW(parse({"-c", "-D", "f", "u"}), std::invalid_argument);
  EXPECT_THROW(parse({"-I", "0", "f", "u"}), std::invalid_argument);
  EXPECT_THROW(parse({"-I", "1000001", "f", "u"}), std::invalid_argument);
  EXPECT_THROW(parse({"-I"}), std::invalid_argument);
  EXPECT_THROW(parse({"-x", "f", "u"}), std::invalid_argument);
  EXPECT_THROW(parse({"f", "a:b"}), std::invalid_argument);
  EXPECT_THROW(parse({"f", "#a"}), std::invalid_argument);
  EXPECT_THROW(parse({"f", ""}), std::invalid_argument);
}

TEST(PasswdCommand, EditsTextKeepingOtherLines) {
  const std::string text = "# users\nalice:$7$old\n\nbob:$6$x\n";
  EXPECT_EQ(edit_password_text(text, "alice", "$7$new"), "# users\nalice:$7$new\n\nbob:$6$x\n");
  EXPECT_EQ(edit_password_text(text, "carol", "$7$c"),
            "# users\nalice:$7$old\n\nbob:$6$x\ncarol:$7$c\n");
  EXPECT_EQ(edit_password_text(text, "alice", std::nullopt), "# users\n\nbob:$6$x\n");
  // A user name that is a prefix of another, or appears in a comment, is not that line.
  EXPECT_EQ(edit_password_text("#alice:x\nalicia:y", "alice", "z"),
            "#alice:x\nalicia:y\nalice:z\n");
  // A repeated line (which the loader would refuse) goes away.
  EXPECT_EQ(edit_password_text("a:1\nb:2\na:3\n", "a", "4"), "a:4\nb:2\n");
  EXPECT_EQ(edit_password_text("", "a", "1"), "a:1\n");
  EXPECT_THROW(edit_password_text(text, "carol", std::nullopt), std::invalid_argument);
}

TEST(PasswdCommand, UpdatesFileAtomically) {
  TempDir dir;
  const std::string path = dir.file("passwd");
  PasswdOptions o;
  o.file = path;
  o.user = "alice";
  EXPECT_THROW(update_password_file(o, "pw1"), std::runtime_error);  // no -c, no file

  o.create = true;
  update_password_file(o, "pw1");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // A comment someone added by hand survives later edits.
  std::ofstream(path, std::ios::app) << "# ops team\n";
  o.create = false;
  o.user = "bob";
  o.scram = true;
  o.iterations = 5000;
  update_password_file(o, "pw2");
  o.user = "alice";
  o.scram = false;
  o.iterations = 0;
  update_password_file(o, "pw3");
  EXPECT_THROW(update_password_file(o, ""), std::invalid_argument);

  auth::PasswordFile file = auth::PasswordFile::load(path);
  EXPECT_TRUE(file.check("alice", "pw3"));
  EXPECT_FALSE(file.check("alice", "pw1"));
  EXPECT_TRUE(file.check("bob", "pw2"));
  ASSERT_TRUE(file.scram_credentials("bob"));
  EXPECT_EQ(file.scram_credentials("bob")->iterations, 5000u);
  EXPECT_EQ(file.lookup("alice")->iterations(), 101u);
  std::istringstream lines(auth::read_text(path));
  std::string line;
  std::vector<std::string> starts;
  while (std::getline(lines, line))
    starts.push_back(line.substr(0, line.find(':') == std::string::npos ? line.size() : 6));
  EXPECT_EQ(starts, (std::vector<std::string>{"alice:", "# ops team", "bob:$s"}));

  o.remove = true;
  update_password_file(o, "");
  file = auth::PasswordFile::load(path);
  EXPECT_EQ(file.size(), 1u);
  EXPECT_EQ(file.lookup("alice"), nullptr);
  EXPECT_THROW(update_password_file(o, ""), std::invalid_argument);  // already gone

  // No temporary files left behind.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(PasswdCommand, RunReturnsExitCodes) {
  TempDir dir;
  const std::string path = dir.file("passwd");
  std::vector<std::string> args = {"passwd", "-c", "-b", path, "carol", "secret"};
  std::vector<char*> argv;
  for (std::string& arg : args)
    argv.push_back(arg.data());
  EXPECT_EQ(run_passwd_command(static_cast<int>(argv.size()), argv.data()), 0);
  EXPECT_TRUE(auth::PasswordFile::load(path).check("carol", "secret"));
  args = {"passwd", "-D", path, "nobody"};
  argv.clear();
  for (std::string& arg : args)
    argv.push_back(arg.data());
  EXPECT_EQ(run_passwd_command(static_cast<int>(argv.size()), argv.data()), 1);
}

}  // namespace
}  // namespace starling::app
