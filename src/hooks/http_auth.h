// [auth.http]: the user's HTTP service decides CONNECTs (connect_url) and topic access
// (acl_url), with EMQX's request fields and answers, so a service written for EMQX works
// unchanged:
//   CONNECT:  POST {"clientid","username","password","peerhost","proto_ver","protocol",
//                   "cert_common_name","listener"}
//   ACL:      POST {"clientid","username","peerhost","action":"publish"|"subscribe","topic",
//                   "qos","retain"}
//   answer:   200 {"result":"allow"|"deny"|"ignore", "is_superuser":bool, "acl":[rules]}
//             (is_superuser and acl only for CONNECT; rules in auth/client_rules.h's forms);
//             204 without a body is allow.
// Anything else (no answer within timeout_ms, a connection refused, another status, a body
// that is not such JSON, more than max_pending requests waiting) is Failed: the broker applies
// on_error. Failures are counted and logged at most every 10 s.
#pragma once

#include <memory>
#include <string>

#include "broker/external_auth.h"
#include "config/auth_settings.h"
#include "core/rate_limit.h"
#include "hooks/answer_cache.h"
#include "http/client/async_client.h"

namespace starling::hooks {

class HttpAuth final : public broker::ExternalAuth {
 public:
  // Throws std::runtime_error when libcurl cannot be loaded.
  explicit HttpAuth(const config::HttpAuthSettings& settings);

  bool checks_connect() const override { return !settings_.connect_url.empty(); }
  bool checks_acl() const override { return !settings_.acl_url.empty(); }
  std::optional<broker::ConnectAnswer> connect(
      const broker::ConnectQuery& query, std::function<void(broker::ConnectAnswer)> done) override;
  std::optional<broker::Decision> acl(const broker::AclQuery& query,
                                      std::function<void(broker::Decision)> done) override;

  // For tests and the fuzzer: an answer's status and body as the broker takes them.
  static broker::ConnectAnswer parse_connect_answer(long status, const std::string& body,
                                                    const broker::ConnectQuery& query);
  static broker::Decision parse_acl_answer(long status, const std::string& body, std::string& why);

 private:
  http_client::Request request(const std::string& url, std::string body) const;
  void log_failure(const char* question, const std::string& why);

  const config::HttpAuthSettings settings_;
  AnswerCache<broker::ConnectAnswer> connect_cache_;
  AnswerCache<broker::Decision> acl_cache_;
  core::RateLimit failure_log_{std::chrono::seconds(10)};
  // Last: destroyed first, so the callbacks it still runs ("stopped") find the rest alive.
  http_client::AsyncClient client_;
};

}  // namespace starling::hooks
