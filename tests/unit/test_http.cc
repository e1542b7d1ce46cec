// The pieces of the HTTP server that need no socket: request parsing over http-parser, URLs,
// base64, responses, authorization, publish bodies, histograms and the Prometheus text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <variant>

#include "config/config.h"
#include "core/base64.h"
#include "http/auth.h"
#include "http/parser/request_parser.h"
#include "http/parser/url.h"
#include "http/publish.h"
#include "http/response.h"
#include "http/server.h"
#include "metrics/histogram.h"
#include "metrics/prometheus.h"

namespace starling::http {
namespace {

using Event = RequestParser::Event;

// Feeds all of data, n bytes at a time; returns the completed requests (stops at an error).
std::vector<Request> parse_all(RequestParser& p, std::string_view data, size_t n,
                               bool* error = nullptr) {
  std::vector<Request> out;
  std::string pending;
  for (size_t i = 0; i < data.size(); i += n) {
    pending.append(data.substr(i, n));
    for (;;) {
      auto r = p.feed(pending);
      pending.erase(0, r.consumed);
      if (r.event == Event::Complete) {
        out.push_back(p.take());
        continue;
      }
      if (r.event == Event::Error) {
        if (error) *error = true;
        return out;
      }
      if (r.event == Event::HeadersDone) continue;
      break;
    }
  }
  return out;
}

TEST(RequestParser, SimpleGet) {
  RequestParser p;
  auto r = p.feed("GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing: One\r\n\r\n");
  ASSERT_EQ(r.event, Event::Complete);
  Request req = p.take();
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/healthz?x=1");
  ASSERT_NE(req.header("x-thing"), nullptr);
  EXPECT_EQ(*req.header("x-thing"), "One");
  EXPECT_EQ(req.header("missing"), nullptr);
  EXPECT_TRUE(req.keep_alive);
  EXPECT_EQ(req.version_minor, 1u);
  EXPECT_FALSE(p.in_progress());
}

TEST(RequestParser, PipelinedRequestsStopAfterEach) {
  RequestParser p;
  std::string two = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n";
  auto r = p.feed(two);
  ASSERT_EQ(r.event, Event::Complete);
  EXPECT_LT(r.consumed, two.size());
  Request a = p.take();
  EXPECT_EQ(a.body, "hello");
  auto r2 = p.feed(std::string_view(two).substr(r.consumed));
  ASSERT_EQ(r2.event, Event::Complete);
  EXPECT_EQ(r.consumed + r2.consumed, two.size());
  EXPECT_EQ(p.take().target, "/b");
}

TEST(RequestParser, ByteAtATimeAndChunked) {
  RequestParser p;
  std::string data =
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      "GET /d HTTP/1.1\r\n\r\n";
  auto reqs = parse_all(p, data, 1);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, "abcde");
  EXPECT_EQ(reqs[1].target, "/d");
}

TEST(RequestParser, KeepAliveRules) {
  RequestParser p;
  auto reqs = parse_all(p, "GET / HTTP/1.0\r\n\r\n", 100);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_FALSE(reqs[0].keep_alive);
  RequestParser q;
  reqs = parse_all(q, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 100);
  EXPECT_TRUE(reqs[0].keep_alive);
  RequestParser s;
  reqs = parse_all(s, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 100);
  EXPECT_FALSE(reqs[0].keep_alive);
}

TEST(RequestParser, DeclaredBodyOverLimitFailsBeforeTheBody) {
  RequestParser p(ParseLimits{1024, 10});
  auto r = p.feed("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
  EXPECT_EQ(r.event, Event::Error);
  EXPECT_EQ(p.status(), 413);
  EXPECT_EQ(p.feed("more").event, Event::Error);  // stays failed
}

TEST(RequestParser, ChunkedBodyOverLimit) {
  RequestParser p(ParseLimits{1024, 10});
  bool error = false;
  parse_all(p, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n", 7,
            &error);
  parse_all(p, "12345678\r\n0\r\n\r\n", 100, &error);
  EXPECT_TRUE(error);
  EXPECT_EQ(p.status(), 413);
}

TEST(RequestParser, HeadersOverLimit) {
  RequestParser p(ParseLimits{1024, 1000});
  auto r = p.feed("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.event, Event::Error);
  EXPECT_EQ(p.status(), 431);
}

TEST(RequestParser, MalformedAndVersion) {
  RequestParser p;
  EXPECT_EQ(p.feed("NOT HTTP AT ALL\r\n\r\n").event, Event::Error);
  EXPECT_EQ(p.status(), 400);
  RequestParser q;
  EXPECT_EQ(q.feed("GET / HTTP/2.0\r\n\r\n").event, Event::Error);
  EXPECT_EQ(q.status(), 505);
  RequestParser s;
  EXPECT_EQ(s.feed("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").event, Event::Error);
  EXPECT_EQ(s.status(), 400);
}

TEST(RequestParser, ExpectContinueStopsAfterHeaders) {
  RequestParser p;
  std::string data = "POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  auto r = p.feed(data);
  EXPECT_EQ(r.event, Event::HeadersDone);
  EXPECT_TRUE(p.in_progress());
  auto rest = p.feed(std::string_view(data).substr(r.consumed));
  EXPECT_EQ(rest.event, Event::NeedMore);
  auto body = p.feed("ok");
  ASSERT_EQ(body.event, Event::Complete);
  Request req = p.take();
  EXPECT_TRUE(req.expect_continue);
  EXPECT_EQ(req.body, "ok");
  RequestParser q;
  q.feed("POST /p HTTP/1.1\r\nExpect: something-else\r\n\r\n");
  EXPECT_EQ(q.status(), 417);
}

TEST(RequestParser, UpgradeClosesAfterTheAnswer) {
  RequestParser p;
  auto r = p.feed("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(r.event, Event::Complete);
  EXPECT_FALSE(p.take().keep_alive);
}

// --- URLs ------------------------------------------------------------------------------------

TEST(Url, SplitTarget) {
  auto t = split_target("/api/v1/clients?prefix=a#frag");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/api/v1/clients");
  EXPECT_EQ(t->query, "prefix=a");
  auto abs = split_target("http://host:8080/metrics?x");
  ASSERT_TRUE(abs);
  EXPECT_EQ(abs->path, "/metrics");
  EXPECT_FALSE(split_target("*"));
  EXPECT_FALSE(split_target("host:443"));
  EXPECT_FALSE(split_target(""));
}

TEST(Url, PercentDecodingAndQuery) {
  EXPECT_EQ(percent_decode("a%2Fb%20c+d", false), "a/b c+d");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_FALSE(percent_decode("%", false));
  EXPECT_FALSE(percent_decode("%4", false));
  EXPECT_FALSE(percent_decode("%zz", false));
  auto q = parse_query("topic=a%2Fb&qos=1&&flag");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 3u);
  EXPECT_EQ(*find_param(*q, "topic"), "a/b");
  EXPECT_EQ(*find_param(*q, "flag"), "");
  EXPECT_EQ(find_param(*q, "none"), nullptr);
  EXPECT_FALSE(parse_query("a=%G0"));
  EXPECT_EQ(percent_encode("a/b c~"), "a%2Fb%20c~");
}

// --- base64 ----------------------------------------------------------------------------------

TEST(Base64, RoundTripAndRejects) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    std::string e = core::base64_encode(s);
    EXPECT_EQ(core::base64_decode(e), s) << e;
  }
  EXPECT_EQ(core::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(core::base64_decode("Zm9vYg"), "foob");  // padding optional
  EXPECT_FALSE(core::base64_decode("Zm9vY"));        // 1 leftover char
  EXPECT_FALSE(core::base64_decode("Zm9v YmFy"));
  EXPECT_FALSE(core::base64_decode("Zm9vYh=="));  // non-zero trailing bits
  EXPECT_FALSE(core::base64_decode("Zm-_"));
  EXPECT_FALSE(core::base64_decode("Zg="));
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  EXPECT_EQ(core::base64_decode(core::base64_encode(all)), all);
}

// --- responses -------------------------------------------------------------------------------

TEST(Response, Serialize) {
  std::string out;
  Response r = json_response(202, R"({"a":1})");
  r.headers.emplace_back("X-Extra", "1");
  serialize(r, true, false, 1, out);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 202 Accepted\r\n"));
  EXPECT_NE(out.find("\r\nContent-Length: 7\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Extra: 1\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nDate: "), std::string::npos);
  EXPECT_EQ(out.find("Connection:"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\n{\"a\":1}"));
  out.clear();
  serialize(r, false, true, 1, out);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\n"));  // HEAD: no body, length kept
  out.clear();
  serialize(r, true, false, 0, out);
  EXPECT_TRUE(out.starts_with("HTTP/1.0 202"));
  EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos);
}

TEST(Response, JsonErrorEscapes) {
  Response r = json_error(400, "bad_topic", "topic \"a\xff\" is bad");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "bad_topic");
  EXPECT_EQ(r.status, 400);
}

// --- authorization ---------------------------------------------------------------------------

Request with_auth(const std::string& value) {
  Request r;
  r.headers.emplace_back("authorization", value);
  return r;
}

TEST(Auth, NoTokensMeansLoopbackOnly) {
  config::HttpSettings s;
  EXPECT_FALSE(authorize(Request{}, true, s, Scope::Admin));
  auto denied = authorize(Request{}, false, s, Scope::Read);
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
}

TEST(Auth, TokensAndScopes) {
  config::HttpSettings s;
  s.tokens.push_back({"r", "read-token-0123456789", {"read"}});
  s.tokens.push_back({"a", "admin-token-0123456789", {"admin"}});
  // Tokens apply to loopback too.
  auto missing = authorize(Request{}, true, s, Scope::Read);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(authorize(with_auth("Bearer nope"), true, s, Scope::Read)->status, 401);
  EXPECT_EQ(authorize(with_auth("Basic read-token-0123456789"), true, s, Scope::Read)->status, 401);
  EXPECT_EQ(authorize(with_auth("Bearer read-token-012345678"), true, s, Scope::Read)->status,
            401);  // a prefix is not the token
  EXPECT_FALSE(authorize(with_auth("Bearer read-token-0123456789"), false, s, Scope::Read));
  EXPECT_FALSE(authorize(with_auth("bearer  read-token-0123456789 "), false, s, Scope::Read));
  EXPECT_EQ(authorize(with_auth("Bearer read-token-0123456789"), false, s, Scope::Publish)->status,
            403);
  EXPECT_FALSE(authorize(with_auth("Bearer admin-token-0123456789"), false, s, Scope::Publish));
  EXPECT_FALSE(authorize(with_auth("Bearer admin-token-0123456789"), false, s, Scope::Admin));
}

TEST(Auth, LoopbackPeers) {
  EXPECT_TRUE(is_loopback_peer("127.0.0.1:5000"));
  EXPECT_TRUE(is_loopback_peer("127.3.2.1:5000"));
  EXPECT_TRUE(is_loopback_peer("[::1]:5000"));
  EXPECT_TRUE(is_loopback_peer("[::ffff:127.0.0.1]:5000"));
  EXPECT_FALSE(is_loopback_peer("10.0.0.1:5000"));
  EXPECT_FALSE(is_loopback_peer("[::ffff:10.0.0.1]:5000"));
  EXPECT_FALSE(is_loopback_peer("[2001:db8::1]:5000"));
  EXPECT_FALSE(is_loopback_peer("garbage"));
}

// --- publish bodies --------------------------------------------------------------------------

std::optional<broker::Publication> ok_publication(const std::string& body,
                                                  const config::Config& c = config::defaults()) {
  auto parsed = publication_from_json(nlohmann::json::parse(body), c);
  if (auto* e = std::get_if<PublishError>(&parsed)) {
    ADD_FAILURE() << e->code << ": " << e->message;
    return std::nullopt;
  }
  return std::move(std::get<broker::Publication>(parsed));
}

// The error code an HTTP publish of body gets: from the body's own checks, else from the
// broker's rules (the front door's check, mapped as publish_one maps it).
std::string error_of(const std::string& body, const config::Config& c = config::defaults()) {
  auto parsed = publication_from_json(nlohmann::json::parse(body), c);
  if (auto* e = std::get_if<PublishError>(&parsed)) return e->code;
  broker::Publisher from;
  from.settings = &c;
  const auto verdict = broker::Ingress::check(std::get<broker::Publication>(parsed), from);
  if (verdict != broker::PublishVerdict::Delivered) return refusal(verdict, c).code;
  return "ok";
}

TEST(PublishBody, Fields) {
  auto m = ok_publication(R"({"topic":"a/b","payload":"aGk=","payload_encoding":"base64",
      "qos":1,"retain":true,"properties":{"message_expiry_interval":10,"content_type":"t",
      "response_topic":"r/t","correlation_data":"c","payload_format_indicator":1,
      "user_properties":{"k":"v"}}})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->topic, "a/b");
  EXPECT_EQ(m->payload, "hi");
  EXPECT_EQ(m->qos, 1);
  EXPECT_TRUE(m->retain);
  EXPECT_EQ(m->expiry_interval, 10u);
  ASSERT_TRUE(m->properties);
  EXPECT_EQ(m->properties->content_type, "t");
  EXPECT_EQ(m->properties->response_topic, "r/t");
  EXPECT_EQ(m->properties->correlation_data, "c");
  EXPECT_EQ(m->properties->payload_format_indicator, 1);
  ASSERT_EQ(m->properties->user_properties.size(), 1u);
  auto plain = ok_publication(R"({"topic":"x"})");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->payload, "");
  EXPECT_FALSE(plain->properties);
  EXPECT_FALSE(plain->expiry_interval);
}

TEST(PublishBody, Errors) {
  EXPECT_EQ(error_of(R"({"payload":"x"})"), "bad_topic");
  EXPECT_EQ(error_of(R"({"topic":"a/#"})"), "bad_topic");
  EXPECT_EQ(error_of(R"({"topic":"$SYS/x"})"), "reserved_topic");
  EXPECT_EQ(error_of(R"({"topic":"a","payload":"!","payload_encoding":"base64"})"), "bad_payload");
  EXPECT_EQ(error_of(R"({"topic":"a","payload_encoding":"hex"})"), "bad_encoding");
  EXPECT_EQ(error_of(R"({"topic":"a","qos":3})"), "bad_qos");
  EXPECT_EQ(error_of(R"({"topic":"a","qos":1.0})"), "bad_qos");
  EXPECT_EQ(error_of(R"({"topic":"a","extra":1})"), "bad_request");
  EXPECT_EQ(error_of(R"("just a string")"), "bad_request");
  EXPECT_EQ(error_of(R"({"topic":"a","properties":{"nope":1}})"), "bad_properties");
  EXPECT_EQ(error_of(R"({"topic":"a","properties":{"message_expiry_interval":4294967296}})"),
            "bad_properties");
  // payload_format_indicator 1 promises UTF-8.
  EXPECT_EQ(error_of(R"({"topic":"a","payload":"/w==","payload_encoding":"base64",
      "properties":{"payload_format_indicator":1}})"),
            "bad_payload");
  config::Config c = config::defaults();
  c.mqtt.max_qos = 1;
  c.mqtt.retain_available = false;
  c.limits.max_topic_levels = 2;
  EXPECT_EQ(error_of(R"({"topic":"a","qos":2})", c), "qos_not_supported");
  EXPECT_EQ(error_of(R"({"topic":"a","retain":true})", c), "retain_not_supported");
  EXPECT_EQ(error_of(R"({"topic":"a/b/c"})", c), "bad_topic");
  EXPECT_EQ(error_of(R"({"topic":"a/b"})", c), "ok");
}

TEST(PublishBody, Query) {
  QueryParams q = {
      {"topic", "t/1"}, {"qos", "2"}, {"retain", "true"}, {"message_expiry_interval", "5"}};
  auto parsed = publication_from_query(q, "body", config::defaults());
  ASSERT_TRUE(std::holds_alternative<broker::Publication>(parsed));
  const auto& m = std::get<broker::Publication>(parsed);
  EXPECT_EQ(m.payload, "body");
  EXPECT_EQ(m.qos, 2);
  EXPECT_TRUE(m.retain);
  EXPECT_EQ(m.expiry_interval, 5u);
  auto bad = publication_from_query({{"topic", "t"}, {"qos", "01x"}}, "", config::defaults());
  ASSERT_TRUE(std::holds_alternative<PublishError>(bad));
  EXPECT_EQ(std::get<PublishError>(bad).code, "bad_qos");
}

TEST(PublishBody, MessageIdsAreUnique) {
  std::string a = next_message_id();
  std::string b = next_message_id();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 20u);
}

// --- metrics ---------------------------------------------------------------------------------

TEST(Metrics, HistogramBuckets) {
  using metrics::Histogram;
  auto before = metrics::snapshot(Histogram::HttpRequest);
  metrics::observe_ns(Histogram::HttpRequest, 10'000);          // <= 50us
  metrics::observe_ns(Histogram::HttpRequest, 50'000);          // <= 50us (inclusive)
  metrics::observe_ns(Histogram::HttpRequest, 50'001);          // <= 100us
  metrics::observe_ns(Histogram::HttpRequest, 20'000'000'000);  // +Inf
  auto after = metrics::snapshot(Histogram::HttpRequest);
  EXPECT_EQ(after.count - before.count, 4u);
  EXPECT_EQ(after.buckets[0] - before.buckets[0], 2u);
  EXPECT_EQ(after.buckets[1] - before.buckets[1], 1u);
  EXPECT_EQ(after.buckets[metrics::kBucketCount - 1] - before.buckets[metrics::kBucketCount - 1],
            1u);
  EXPECT_EQ(after.sum_ns - before.sum_ns, 20'000'110'001u);
}

TEST(Metrics, PrometheusText) {
  metrics::Gauges g;
  g.clients_connected = 3;
  g.sessions = 4;
  std::string text = metrics::render_prometheus(g, "9.9");
  EXPECT_NE(text.find("# TYPE starling_connections_accepted_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("starling_clients_connected 3\n"), std::string::npos);
  EXPECT_NE(text.find("starling_sessions 4\n"), std::string::npos);
  EXPECT_NE(text.find("starling_build_info{version=\"9.9\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("starling_messages_dropped_total{reason=\"queue_full\"}"), std::string::npos);
  EXPECT_NE(text.find("starling_publish_to_deliver_seconds_bucket{le=\"5e-05\"}"),
            std::string::npos);
  EXPECT_NE(text.find("starling_store_commit_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_NE(text.find("starling_packets_received_total{type=\"publish\"}"), std::string::npos);
  EXPECT_TRUE(text.ends_with("\n"));
}

}  // namespace
}  // namespace starling::http
