"""The HTTP API, /metrics and the health probes, driven with real HTTP requests: Python's
http.client, raw sockets (pipelining, partial requests, oversized bodies) and curl. Published
messages are checked on the MQTT side with the raw client (mqtt_raw.RawClient), and /metrics
is read with prometheus_client's own text parser."""

import base64
import http.client
import json
import shutil
import socket
import subprocess
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

from harness import (HOST, BrokerTestCase, against_mosquitto, dashboard_queries, exported_series,
                     series_in, unique)
from mqtt_raw import DISCONNECT, PUBLISH

RC_NO_MATCHING_SUBSCRIBERS = 16
RC_ADMINISTRATIVE_ACTION = 0x98

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"
PUBLISH_TOKEN = "publish-token-0123456789abcdef"


class Reply:
    """A parsed HTTP response: status, headers (lower-case names), body bytes, json()."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


def request(port, method, path, body=None, headers=None, timeout=5.0):
    """One request on a fresh connection with http.client."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


class RawHttp:
    """A raw socket that sends bytes as given and reads responses one at a time."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def read_response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return Reply(status, headers, body)

    def closed_by_server(self, timeout=3.0):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def post_bytes(path, body, content_type="application/json", extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def metric_families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


# The HTTP API is Starling's own: nothing to compare with Mosquitto.
starling_only = unittest.skipIf(against_mosquitto(), "the HTTP API is Starling's own")


@starling_only
class HttpApiTest(BrokerTestCase):
    """The API without tokens (loopback only), on one broker with a store."""

    broker_args = {"http": True}

    def call(self, method, path, body=None, headers=None):
        return request(self.http_port, method, path, body, headers)

    def subscriber(self, filters, qos=1, client_id=None, **connect_args):
        c = self.raw_client(client_id=client_id or unique("sub"), **connect_args)
        c.subscribe(filters, qos=qos)
        return c

    def assert_error(self, reply, status, code=None):
        self.assertEqual(reply.status, status, reply)
        self.assertTrue(reply.headers["content-type"].startswith("application/json"))
        body = reply.json()
        self.assertIn("error", body)
        self.assertIn("message", body)
        if code:
            self.assertEqual(body["error"], code, body)
        return body

    # -- probes
    def test_healthz(self):
        r = self.call("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})

    def test_readyz(self):
        r = self.call("GET", "/readyz")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["status"], "ready")
        self.assertEqual(body["checks"]["listeners"], "up")
        self.assertEqual(body["checks"]["store"], "open")

    def test_head_has_no_body(self):
        r = self.call("HEAD", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    # -- publish
    def test_publish_json_plain_with_properties_reaches_mqtt_subscriber(self):
        topic = unique("http") + "/plain"
        sub = self.subscriber(topic, qos=1)
        r = self.call("POST", "/api/v1/publish", {
            "topic": topic, "payload": "21.5 °C", "qos": 1, "retain": False,
            "properties": {
                "message_expiry_interval": 120, "content_type": "text/plain",
                "response_topic": "replies/here", "correlation_data": "req-7",
                "payload_format_indicator": 1, "user_properties": {"site": "lab", "n": "1"}}})
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["id"], r"^[0-9a-f]{20}$")
        p = sub.expect(PUBLISH)
        self.assertEqual(p.topic, topic)
        self.assertEqual(p.payload, "21.5 °C".encode())
        self.assertEqual(p.qos, 1)
        props = p.properties
        self.assertEqual(props["content_type"], "text/plain")
        self.assertEqual(props["response_topic"], "replies/here")
        self.assertEqual(props["correlation_data"], b"req-7")
        self.assertEqual(props["payload_format_indicator"], 1)
        self.assertLessEqual(props["message_expiry_interval"], 120)
        self.assertEqual(sorted(props["user_property"]), [("n", "1"), ("site", "lab")])
        sub.puback(p.packet_id)

    def test_publish_base64_payload_is_binary_exact(self):
        topic = unique("http") + "/bin"
        sub = self.subscriber(topic, qos=0)
        payload = bytes(range(256))
        r = self.call("POST", "/api/v1/publish", {
            "topic": topic, "payload": base64.b64encode(payload).decode(),
            "payload_encoding": "base64"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sub.expect(PUBLISH).payload, payload)

    def test_publish_without_subscriber_is_202_with_reason_16(self):
        r = self.call("POST", "/api/v1/publish", {"topic": unique("nobody"), "payload": "x"})
        self.assertEqual(r.status, 202, r)
        body = r.json()
        self.assertEqual(body["reason_code"], RC_NO_MATCHING_SUBSCRIBERS)
        self.assertIn("id", body)
        self.assertIn("message", body)

    def test_retained_publish_is_delivered_to_a_later_subscriber(self):
        topic = unique("http") + "/retained"
        r = self.call("POST", "/api/v1/publish",
                      {"topic": topic, "payload": "kept", "qos": 1, "retain": True})
        self.assertEqual(r.status, 202, r)  # stored, but nobody subscribed yet
        sub = self.subscriber(topic, qos=1)
        p = sub.expect(PUBLISH)
        self.assertEqual((p.topic, p.payload, p.retain), (topic, b"kept", True))
        listed = self.call("GET", "/api/v1/retained?filter=" + topic).json()
        self.assertEqual(listed["total"], 1)
        self.assertEqual(listed["retained"][0]["payload"], "kept")
        # An empty retained payload deletes it, as over MQTT.
        self.call("POST", "/api/v1/publish", {"topic": topic, "payload": "", "retain": True})
        self.assertEqual(self.call("GET", "/api/v1/retained?filter=" + topic).json()["total"], 0)

    def test_raw_body_with_query_parameters(self):
        topic = unique("http") + "/raw"
        sub = self.subscriber(topic, qos=2)
        body = b"\x00\x01raw bytes\xff"
        r = self.call("POST", f"/api/v1/publish?topic={topic}&qos=2&retain=false"
                      "&content_type=application%2Foctet-stream", body,
                      {"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 200, r)
        p = sub.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos), (body, 2))
        self.assertEqual(p.properties["content_type"], "application/octet-stream")

    def test_raw_body_bad_query_parameter(self):
        self.assert_error(self.call("POST", "/api/v1/publish?topic=a&qos=7", b"x"), 400, "bad_qos")
        self.assert_error(self.call("POST", "/api/v1/publish?topic=a&colour=red", b"x"), 400)
        self.assert_error(self.call("POST", "/api/v1/publish?qos=1", b"x"), 400)

    def test_bulk_with_mixed_items(self):
        topic = unique("http") + "/bulk"
        sub = self.subscriber(topic, qos=1)
        r = self.call("POST", "/api/v1/publish/bulk", [
            {"topic": topic, "payload": "one", "qos": 1},
            {"topic": "bad/+/topic", "payload": "x"},
            {"topic": topic, "payload": "%%%", "payload_encoding": "base64"},
            {"topic": unique("nobody"), "payload": "y"},
            {"topic": topic, "payload": "two"},
        ])
        self.assertEqual(r.status, 200, r)
        results = r.json()["results"]
        self.assertEqual([x["status"] for x in results], [200, 400, 400, 202, 200])
        self.assertEqual(results[1]["error"], "bad_topic")
        self.assertEqual(results[2]["error"], "bad_payload")
        self.assertEqual(results[3]["reason_code"], RC_NO_MATCHING_SUBSCRIBERS)
        got = [sub.expect(PUBLISH).payload for _ in range(2)]
        self.assertEqual(got, [b"one", b"two"])

    def test_bulk_needs_an_array(self):
        self.assert_error(self.call("POST", "/api/v1/publish/bulk", {"topic": "a"}), 400,
                          "bad_request")
        self.assert_error(self.call("POST", "/api/v1/publish/bulk", "[{"), 400, "bad_json")

    # -- bad requests: every one a 4xx with a JSON error
    def test_malformed_json(self):
        self.assert_error(self.call("POST", "/api/v1/publish", '{"topic": "a", '), 400,
                          "bad_json")

    def test_bad_base64(self):
        self.assert_error(self.call("POST", "/api/v1/publish", {
            "topic": "a/b", "payload": "not base64!", "payload_encoding": "base64"}), 400,
            "bad_payload")

    def test_bad_encoding_name(self):
        self.assert_error(self.call("POST", "/api/v1/publish", {
            "topic": "a/b", "payload": "x", "payload_encoding": "hex"}), 400, "bad_encoding")

    def test_bad_topics(self):
        for topic in ["a/#", "a/+/b", "", 42]:
            with self.subTest(topic=topic):
                self.assert_error(self.call("POST", "/api/v1/publish",
                                            {"topic": topic, "payload": "x"}), 400, "bad_topic")
        self.assert_error(self.call("POST", "/api/v1/publish", {"payload": "x"}), 400,
                          "bad_topic")

    def test_reserved_topics(self):
        """$SYS and $share are the broker's own: 403 reserved_topic, as MQTT clients get 0x87."""
        for topic in ["$SYS/broker/clients/connected", "$share/g/t"]:
            with self.subTest(topic=topic):
                self.assert_error(self.call("POST", "/api/v1/publish",
                                            {"topic": topic, "payload": "0", "retain": True}),
                                  403, "reserved_topic")

    def test_bad_fields(self):
        cases = [({"topic": "a", "qos": 3}, "bad_qos"),
                 ({"topic": "a", "qos": "1"}, "bad_qos"),
                 ({"topic": "a", "retain": "yes"}, "bad_request"),
                 ({"topic": "a", "colour": "red"}, "bad_request"),
                 ({"topic": "a", "properties": {"message_expiry_interval": -1}}, "bad_properties"),
                 ({"topic": "a", "properties": {"user_properties": {"k": 1}}}, "bad_properties"),
                 ({"topic": "a", "properties": {"response_topic": "a/#"}}, "bad_properties"),
                 ({"topic": "a", "properties": {"payload_format_indicator": 2}},
                  "bad_properties"),
                 ([1, 2], "bad_request")]
        for body, code in cases:
            with self.subTest(body=body):
                self.assert_error(self.call("POST", "/api/v1/publish", body), 400, code)

    def test_oversized_body_with_content_length_gets_413_before_the_body(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 2000000\r\n\r\n")
        r = c.read_response()
        self.assert_error(r, 413, "payload_too_large")
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertTrue(c.closed_by_server())

    def test_oversized_chunked_body_gets_413(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"POST /api/v1/publish?topic=big HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(20):  # 1.25 MiB > the 1 MiB default
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assert_error(c.read_response(), 413, "payload_too_large")

    def test_oversized_body_with_curl(self):
        curl = shutil.which("curl")
        if not curl:
            self.skipTest("curl is not installed")
        big = "x" * (1024 * 1024 + 10)
        out = subprocess.run(
            [curl, "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "--data-binary", "@-",
             "-H", "Content-Type: application/json", "--max-time", "10",
             f"http://{HOST}:{self.http_port}/api/v1/publish"],
            input=json.dumps({"topic": "a", "payload": big}).encode(), capture_output=True,
            timeout=20)
        body, _, code = out.stdout.decode().rpartition("\n")
        self.assertEqual(code, "413", out)
        self.assertEqual(json.loads(body)["error"], "payload_too_large")

    def test_headers_too_large(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        self.assert_error(c.read_response(), 431, "headers_too_large")

    def test_garbage_is_400(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        self.assert_error(c.read_response(), 400, "bad_request")
        self.assertTrue(c.closed_by_server())

    def test_http2_preface_is_refused(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, (400, 505))
        self.assertIn("error", r.json())

    def test_unknown_path_and_wrong_method(self):
        self.assert_error(self.call("GET", "/api/v1/nothing"), 404, "not_found")
        self.assert_error(self.call("GET", "/nope"), 404, "not_found")
        r = self.assert_error(self.call("GET", "/api/v1/publish"), 405, "method_not_allowed")
        r = self.call("PUT", "/api/v1/clients")
        self.assert_error(r, 405)
        self.assertIn("GET", r.headers["allow"])

    # -- connection handling
    def test_keep_alive_and_pipelining_answer_in_order(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        topic = unique("pipe")
        body = json.dumps({"topic": topic, "payload": "p"}).encode()
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               + post_bytes("/api/v1/publish", body)
               + b"GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"
               + b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        replies = [c.read_response() for _ in range(4)]
        self.assertEqual([r.status for r in replies], [200, 202, 404, 200])
        self.assertEqual(replies[0].json(), {"status": "ok"})
        self.assertEqual(replies[3].json()["status"], "ready")
        # The same connection goes on serving (keep-alive).
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_pipelined_durable_publish_keeps_order(self):
        # A retained QoS 1 publish waits for the store; the GET after it must not overtake it.
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        topic = unique("pipe") + "/durable"
        body = json.dumps({"topic": topic, "payload": "d", "qos": 1, "retain": True}).encode()
        c.send(post_bytes("/api/v1/publish", body) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               + post_bytes("/api/v1/publish", body))
        replies = [c.read_response() for _ in range(3)]
        self.assertEqual([r.status for r in replies], [202, 200, 202])
        self.assertIn("id", replies[0].json())
        self.assertEqual(replies[1].json(), {"status": "ok"})

    def test_half_closed_client_still_gets_its_answers(self):
        # The client sends its requests and shuts down its side; the durable publish answers
        # after the EOF has been read and must still arrive.
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        topic = unique("half") + "/durable"
        body = json.dumps({"topic": topic, "payload": "h", "qos": 1, "retain": True}).encode()
        c.send(post_bytes("/api/v1/publish", body) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual([c.read_response().status for _ in range(2)], [202, 200])
        self.assertTrue(c.closed_by_server())

    def test_split_request_and_expect_continue(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        body = json.dumps({"topic": unique("split"), "payload": "s"}).encode()
        c.send(b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        self.assertEqual(c.read_response().status, 100)
        for i in range(len(body)):  # one byte at a time
            c.send(body[i:i + 1])
        self.assertEqual(c.read_response().status, 202)

    def test_connection_close_is_honoured(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["connection"], "close")
        self.assertTrue(c.closed_by_server())

    def test_http10_closes_by_default(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertTrue(c.closed_by_server())

    # -- views
    def test_clients_list_filter_page_and_detail(self):
        prefix = unique("view")
        subs = [self.subscriber(f"{prefix}/t/{i}", client_id=f"{prefix}-{i}",
                                properties={"session_expiry_interval": 60}) for i in range(3)]
        self.assertEqual(len(subs), 3)
        r = self.call("GET", f"/api/v1/clients?prefix={prefix}")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["total"], 3)
        ids = [c["client_id"] for c in body["clients"]]
        self.assertEqual(ids, [f"{prefix}-{i}" for i in range(3)])
        first = body["clients"][0]
        self.assertTrue(first["connected"])
        self.assertEqual(first["protocol_version"], "5.0")
        self.assertEqual(first["subscriptions"], 1)
        self.assertEqual(first["session_expiry_interval"], 60)
        self.assertTrue(first["peer"].startswith("127.0.0.1:"))
        page = self.call("GET", f"/api/v1/clients?prefix={prefix}&offset=1&limit=1").json()
        self.assertEqual([c["client_id"] for c in page["clients"]], [f"{prefix}-1"])
        self.assertEqual(page["total"], 3)

        detail = self.call("GET", f"/api/v1/clients/{prefix}-2")
        self.assertEqual(detail.status, 200)
        d = detail.json()
        self.assertEqual(d["client_id"], f"{prefix}-2")
        self.assertEqual([s["filter"] for s in d["subscription_list"]], [f"{prefix}/t/2"])
        self.assert_error(self.call("GET", f"/api/v1/clients/{prefix}-nobody"), 404, "not_found")
        self.assert_error(self.call("GET", "/api/v1/clients?limit=0"), 400)
        self.assert_error(self.call("GET", "/api/v1/clients?offset=-1"), 400)

    def test_client_id_with_slash_is_percent_encoded(self):
        cid = unique("a/b")
        self.subscriber("x/y", client_id=cid)
        from urllib.parse import quote
        r = self.call("GET", "/api/v1/clients/" + quote(cid, safe=""))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["client_id"], cid)

    def test_subscriptions_view(self):
        cid = unique("subs")
        self.subscriber([(f"{cid}/a", 1), (f"{cid}/+/b", 2)], client_id=cid)
        r = self.call("GET", f"/api/v1/subscriptions?client_id={cid}")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["total"], 2)
        got = {(s["filter"], s["qos"]) for s in body["subscriptions"]}
        self.assertEqual(got, {(f"{cid}/a", 1), (f"{cid}/+/b", 2)})
        everyone = self.call("GET", "/api/v1/subscriptions?limit=1000").json()
        self.assertGreaterEqual(everyone["total"], 2)

    def test_stats_view(self):
        before = self.call("GET", "/api/v1/stats").json()
        self.call("POST", "/api/v1/publish", {"topic": unique("stats"), "payload": "s"})
        after = self.call("GET", "/api/v1/stats").json()
        self.assertGreater(after["messages"]["published_over_http"],
                           before["messages"]["published_over_http"])
        for key in ("version", "uptime_seconds", "clients_connected", "sessions", "subscriptions",
                    "retained_messages", "queued_messages"):
            self.assertIn(key, after)

    def test_kick_sends_disconnect_0x98(self):
        cid = unique("kick")
        c = self.raw_client(client_id=cid, properties={"session_expiry_interval": 300})
        r = self.call("DELETE", f"/api/v1/clients/{cid}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"client_id": cid, "kicked": True})
        self.assertEqual(c.wait_closed(), RC_ADMINISTRATIVE_ACTION)
        # The session outlives its connection (expiry 300): now it is not connected.
        deadline = time.monotonic() + 3
        while self.call("GET", f"/api/v1/clients/{cid}").json()["connected"]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assert_error(self.call("DELETE", f"/api/v1/clients/{cid}"), 409, "not_connected")
        self.assert_error(self.call("DELETE", f"/api/v1/clients/{unique('none')}"), 404)

    # -- metrics
    def test_metrics_parse_and_count(self):
        r = self.call("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        families = metric_families(r.body.decode())
        for name in ("starling_connections_accepted", "starling_connections_refused",
                     "starling_packets_received", "starling_packets_sent",
                     "starling_bytes_received", "starling_messages_routed",
                     "starling_messages_dropped", "starling_messages_queued"):
            self.assertEqual(families[name].type, "counter", name)
        for name in ("starling_clients_connected", "starling_sessions", "starling_subscriptions",
                     "starling_retained_messages", "starling_queued_messages",
                     "starling_inflight_messages"):
            self.assertEqual(families[name].type, "gauge", name)
        for name in ("starling_publish_to_deliver_seconds", "starling_store_commit_seconds",
                     "starling_http_request_seconds"):
            family = families[name]
            self.assertEqual(family.type, "histogram", name)
            bounds = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
            self.assertEqual(float(bounds[0]), 50e-6)
            self.assertEqual(float(bounds[-2]), 10.0)
            self.assertEqual(bounds[-1], "+Inf")
        reasons = {s.labels["reason"] for s in families["starling_messages_dropped"].samples}
        self.assertEqual(reasons, {"queue_full", "expired", "too_large", "offline_qos0",
                                   "session_ended", "no_shared_member"})

        def value(fams, family, sample, **labels):
            for s in fams[family].samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
            raise AssertionError(f"no {sample} {labels}")

        # Traffic moves the counters and the latency histogram.
        topic = unique("metrics")
        sub = self.subscriber(topic, qos=0)
        for _ in range(3):
            self.call("POST", "/api/v1/publish", {"topic": topic, "payload": "m"})
            sub.expect(PUBLISH)
        sub.publish(topic, b"from mqtt", qos=0)
        sub.expect(PUBLISH)
        after = metric_families(self.call("GET", "/metrics").body.decode())
        self.assertGreaterEqual(value(after, "starling_http_publishes", "starling_http_publishes_total")
                                - value(families, "starling_http_publishes",
                                        "starling_http_publishes_total"), 3)
        self.assertGreater(value(after, "starling_messages_routed", "starling_messages_routed_total"),
                           value(families, "starling_messages_routed",
                                 "starling_messages_routed_total"))
        self.assertGreater(
            value(after, "starling_packets_received", "starling_packets_received_total",
                  type="publish"),
            value(families, "starling_packets_received", "starling_packets_received_total",
                  type="publish"))
        self.assertGreaterEqual(
            value(after, "starling_publish_to_deliver_seconds",
                  "starling_publish_to_deliver_seconds_count")
            - value(families, "starling_publish_to_deliver_seconds",
                    "starling_publish_to_deliver_seconds_count"), 4)
        self.assertGreaterEqual(value(after, "starling_clients_connected",
                                      "starling_clients_connected"), 1)

    def test_grafana_dashboard_uses_exported_metrics(self):
        exprs = dashboard_queries()
        self.assertGreater(len(exprs), 10)
        used = series_in(exprs)
        exported = exported_series(self.call("GET", "/metrics").body.decode())
        # The Kafka bridge's gauges exist only while it runs: test_kafka_produce checks them.
        bridge_gauges = {"starling_kafka_reachable", "starling_kafka_buffer_messages",
                         "starling_kafka_buffer_bytes", "starling_kafka_sync_waiting",
                         "starling_kafka_consumer_lag", "starling_kafka_assigned_partitions"}
        # So do a cluster node's (test_cluster checks them).
        cluster_series = {"starling_cluster_nodes", "starling_cluster_forwards_total",
                          "starling_cluster_routes", "starling_cluster_inbox_lag",
                          "starling_cluster_ready"}
        # And the MQTT bridges' (test_bridge checks them).
        mqtt_bridges = series_in(exprs, "starling_bridge_")
        self.assertEqual(used - exported - bridge_gauges - cluster_series - mqtt_bridges, set())

    def test_curl_publish_and_metrics(self):
        curl = shutil.which("curl")
        if not curl:
            self.skipTest("curl is not installed")
        topic = unique("curl")
        sub = self.subscriber(topic, qos=0)
        out = subprocess.run(
            [curl, "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
             "-d", json.dumps({"topic": topic, "payload": "from curl"}), "--max-time", "5",
             f"http://{HOST}:{self.http_port}/api/v1/publish"], capture_output=True, timeout=10)
        body, _, code = out.stdout.decode().rpartition("\n")
        self.assertEqual(code, "200", out)
        self.assertIn("id", json.loads(body))
        self.assertEqual(sub.expect(PUBLISH).payload, b"from curl")
        # Raw body with --data-binary and query parameters.
        out = subprocess.run(
            [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "raw!",
             "--max-time", "5", f"http://{HOST}:{self.http_port}/api/v1/publish?topic={topic}"],
            capture_output=True, timeout=10)
        self.assertEqual(out.stdout.decode(), "200")
        self.assertEqual(sub.expect(PUBLISH).payload, b"raw!")
        metrics = subprocess.run([curl, "-s", "--max-time", "5",
                                  f"http://{HOST}:{self.http_port}/metrics"],
                                 capture_output=True, timeout=10)
        self.assertIn("starling_http_publishes_total", metrics.stdout.decode())
        metric_families(metrics.stdout.decode())  # parses


@starling_only
class HttpTokenTest(BrokerTestCase):
    """Bearer tokens with scopes."""

    broker_args = {"http": True}
    broker_config = f"""
[http.tokens.admin]
token = "{ADMIN_TOKEN}"
scopes = ["admin"]

[http.tokens.dashboard]
token = "{READ_TOKEN}"
scopes = ["read"]

[http.tokens.ingest]
token = "{PUBLISH_TOKEN}"
scopes = ["publish"]
"""

    def call(self, method, path, body=None, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return request(self.http_port, method, path, body, headers)

    def test_missing_token_is_401(self):
        for method, path in [("GET", "/api/v1/clients"), ("GET", "/metrics"),
                             ("POST", "/api/v1/publish"), ("DELETE", "/api/v1/clients/x")]:
            with self.subTest(path=path):
                r = self.call(method, path, {"topic": "a"} if method == "POST" else None)
                self.assertEqual(r.status, 401, r)
                self.assertEqual(r.json()["error"], "unauthorized")
                self.assertIn("Bearer", r.headers["www-authenticate"])

    def test_bad_token_is_401(self):
        r = self.call("GET", "/api/v1/stats", token="wrong-token-0123456789abcdef")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "invalid_token")
        r = request(self.http_port, "GET", "/api/v1/stats", headers={"Authorization": "Basic abc"})
        self.assertEqual(r.status, 401)

    def test_wrong_scope_is_403(self):
        r = self.call("POST", "/api/v1/publish", {"topic": "a", "payload": "x"}, READ_TOKEN)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"], "insufficient_scope")
        r = self.call("GET", "/api/v1/clients", token=PUBLISH_TOKEN)
        self.assertEqual(r.status, 403)
        r = self.call("DELETE", "/api/v1/clients/x", token=READ_TOKEN)
        self.assertEqual(r.status, 403)

    def test_right_scopes_pass(self):
        r = self.call("POST", "/api/v1/publish", {"topic": unique("tok"), "payload": "x"},
                      PUBLISH_TOKEN)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.call("GET", "/api/v1/clients", token=READ_TOKEN).status, 200)
        self.assertEqual(self.call("GET", "/metrics", token=READ_TOKEN).status, 200)
        # admin covers every scope
        self.assertEqual(self.call("GET", "/api/v1/stats", token=ADMIN_TOKEN).status, 200)
        r = self.call("POST", "/api/v1/publish", {"topic": unique("tok"), "payload": "x"},
                      ADMIN_TOKEN)
        self.assertEqual(r.status, 202)

    def test_admin_kicks(self):
        cid = unique("kick")
        c = self.raw_client(client_id=cid)
        self.assertEqual(self.call("DELETE", f"/api/v1/clients/{cid}", token=PUBLISH_TOKEN)
                         .status, 403)
        r = self.call("DELETE", f"/api/v1/clients/{cid}", token=ADMIN_TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(c.wait_closed(), RC_ADMINISTRATIVE_ACTION)

    def test_probes_need_no_token(self):
        self.assertEqual(self.call("GET", "/healthz").status, 200)
        self.assertEqual(self.call("GET", "/readyz").status, 200)

    def test_curl_with_token(self):
        curl = shutil.which("curl")
        if not curl:
            self.skipTest("curl is not installed")
        base = [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
        url = f"http://{HOST}:{self.http_port}/api/v1/stats"
        out = subprocess.run(base + [url], capture_output=True, timeout=10)
        self.assertEqual(out.stdout.decode(), "401")
        out = subprocess.run(base + ["-H", f"Authorization: Bearer {READ_TOKEN}", url],
                             capture_output=True, timeout=10)
        self.assertEqual(out.stdout.decode(), "200")


@starling_only
class HttpReloadTest(BrokerTestCase):
    """Tokens and limits are reloaded on SIGHUP."""

    broker_scope = None  # the test starts its own, with the file it then changes

    def test_new_token_applies_after_sighup(self):
        import os
        import signal
        first = f'[http.tokens.a]\ntoken = "{READ_TOKEN}"\nscopes = ["read"]\n'
        b = self.new_broker(config_text=first, http=True)
        self.assertEqual(request(b.http_port, "GET", "/api/v1/stats",
                                 headers={"Authorization": f"Bearer {READ_TOKEN}"}).status, 200)
        with open(os.path.join(b.tmp, "starling.toml"), "w") as f:
            f.write(f'[http]\nmax_body_bytes = 100\n'
                    f'[http.tokens.b]\ntoken = "{ADMIN_TOKEN}"\nscopes = ["admin"]\n')
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while request(b.http_port, "GET", "/api/v1/stats",
                      headers={"Authorization": f"Bearer {READ_TOKEN}"}).status != 401:
            self.assertLess(time.monotonic(), deadline, "old token still accepted")
            time.sleep(0.05)
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.assertEqual(request(b.http_port, "GET", "/api/v1/stats", headers=auth).status, 200)
        r = request(b.http_port, "POST", "/api/v1/publish", {"topic": "a", "payload": "x" * 200},
                    auth)
        self.assertEqual(r.status, 413)


HTTP_LIMITS_CONFIG = """
[storage]
durability = "none"

[http]
max_body_bytes = 1000
idle_timeout_ms = 300
request_timeout_ms = 300
max_connections = 3
"""


class HealthyConnections:
    def healthy_connections(self, n):
        """n connections that each got 200 for /healthz. The connections of earlier tests in
        the class count against max_connections until the broker has seen them close, which
        under load can take a while: retried (for at most 20 s) while one gets 503."""
        deadline = time.monotonic() + 20
        while True:
            held = []
            statuses = []
            for _ in range(n):
                c = RawHttp(self.http_port)
                held.append(c)
                c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                statuses.append(c.read_response().status)
            if all(status == 200 for status in statuses):
                return held
            for c in held:
                c.close()
            self.assertEqual(set(statuses) - {200}, {503})
            self.assertLess(time.monotonic(), deadline, "earlier connections never went away")
            time.sleep(0.1)


@starling_only
class HttpLimitsTest(HealthyConnections, BrokerTestCase):
    """Small limits: idle and request timeouts, body size, durability none."""

    broker_args = {"http": True}
    broker_config = HTTP_LIMITS_CONFIG

    def test_idle_connection_is_closed(self):
        [c] = self.healthy_connections(1)
        self.addCleanup(c.close)
        self.assertTrue(c.closed_by_server(timeout=3))  # idle_timeout_ms = 300 (default 60 s)

    def test_slow_request_gets_408(self):
        c = RawHttp(self.http_port)
        self.addCleanup(c.close)
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        r = c.read_response()
        self.assertEqual(r.status, 408)
        self.assertEqual(r.json()["error"], "request_timeout")
        self.assertTrue(c.closed_by_server())

    def test_body_limit_from_config(self):
        r = request(self.http_port, "POST", "/api/v1/publish",
                    {"topic": "a", "payload": "x" * 2000})
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json()["error"], "payload_too_large")
        r = request(self.http_port, "POST", "/api/v1/publish", {"topic": "a", "payload": "x" * 500})
        self.assertEqual(r.status, 202)

    def test_readyz_without_store(self):
        body = request(self.http_port, "GET", "/readyz").json()
        self.assertEqual(body["checks"]["store"], "not configured")


@starling_only
class HttpConnectionLimitTest(HealthyConnections, BrokerTestCase):
    """max_connections, on a broker of its own: the connections it holds and closes would
    count against the other tests until the broker has seen them close."""

    broker_args = {"http": True}
    broker_config = HTTP_LIMITS_CONFIG

    def test_connection_limit(self):
        held = self.healthy_connections(3)
        try:
            extra = RawHttp(self.http_port)
            held.append(extra)
            r = extra.read_response()
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["error"], "too_many_connections")
        finally:
            for c in held:
                c.close()


if __name__ == "__main__":
    unittest.main()
