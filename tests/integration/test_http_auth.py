"""[auth.http]: the user's HTTP service decides CONNECTs and topic access (EMQX's fields), with
the harness's HookService as that service: allow, deny, ignore then the password file, a slow
or stopped service (fail closed with 0x88 and counted; on_error = "ignore" falls through), the
answer cache (one request for many connects), is_superuser and the rules an answer carries,
acl_url for PUBLISH and SUBSCRIBE (cached, and in order: a publish that waits for its answer
holds the ones behind it), a will topic the service refuses, and the counters.
"""

import os
import tempfile
import unittest

from harness import HOST, BrokerTestCase, metric, unique
from hook_service import HookService
from mqtt_raw import PUBACK, PUBLISH, RawClient
from test_auth import starling_passwd
from tls_certs import make_pki

RC_SUCCESS = 0x00
RC_BAD_USERNAME_OR_PASSWORD = 0x86
RC_NOT_AUTHORIZED = 0x87
RC_SERVER_UNAVAILABLE = 0x88
V311_BAD_USERNAME_OR_PASSWORD = 4


class HttpAuthTest(BrokerTestCase):
    broker_scope = None

    def setUp(self):
        super().setUp()
        self.service = HookService()
        self.addCleanup(self.service.close)

    def start_broker(self, http_auth="", auth_extra="", extra=""):
        """A broker whose [auth.http] points at the service; returns it."""
        config = f"""
[auth]
{auth_extra}
[auth.http]
connect_url = "{self.service.url('/auth')}"
{http_auth}
{extra}
"""
        self.broker = self.new_broker(config_text=config, http=True)
        self.port, self.http_port = self.broker.port, self.broker.http_port
        return self.broker

    def connack(self, client_id=None, version=5, **kwargs):
        c = RawClient(self.port, version)
        self.addCleanup(c.close)
        return c, c.connect(client_id or unique("h"), **kwargs)

    # -- CONNECT
    def test_allow_sends_emqx_fields(self):
        self.start_broker()
        _, ack = self.connack("dev-1", username="alice", password=b"s3cret")
        self.assertEqual(ack.reason_code, RC_SUCCESS)
        body = self.service.bodies("/auth")[-1]
        self.assertEqual(body["clientid"], "dev-1")
        self.assertEqual(body["username"], "alice")
        self.assertEqual(body["password"], "s3cret")
        self.assertEqual(body["peerhost"], HOST)
        self.assertEqual(body["proto_ver"], 5)
        self.assertEqual(body["protocol"], "mqtt")
        self.assertIn("listener", body)

    def test_deny_is_bad_user_name_or_password(self):
        self.start_broker()
        self.service.connect_answer = lambda req: (200, {"result": "deny"})
        _, ack = self.connack(username="mallory", password=b"x")
        self.assertEqual(ack.reason_code, RC_BAD_USERNAME_OR_PASSWORD)
        _, ack = self.connack(version=4, username="mallory", password=b"x")
        self.assertEqual(ack.reason_code, V311_BAD_USERNAME_OR_PASSWORD)

    def test_ignore_falls_through_to_the_password_file(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), unique("pw"))
        self.addCleanup(lambda: os.path.exists(path) and os.remove(path))
        r = starling_passwd("-c", "-b", path, "bob", "hunter2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.start_broker(auth_extra=f'password_file = "{path}"')
        self.service.connect_answer = lambda req: (200, {"result": "ignore"})
        _, ack = self.connack(username="bob", password=b"hunter2")
        self.assertEqual(ack.reason_code, RC_SUCCESS)
        _, ack = self.connack(username="bob", password=b"wrong")
        self.assertEqual(ack.reason_code, RC_BAD_USERNAME_OR_PASSWORD)
        # Nobody checks an anonymous client: refused, as with a password file alone.
        _, ack = self.connack()
        self.assertEqual(ack.reason_code, RC_NOT_AUTHORIZED)

    def test_timeout_fails_closed_and_is_counted(self):
        self.start_broker(http_auth="timeout_ms = 300\ncache_ttl_s = 0")
        self.service.delay = 1.5
        _, ack = self.connack(username="slow", password=b"x", timeout=10)
        self.assertEqual(ack.reason_code, RC_SERVER_UNAVAILABLE)
        self.assertGreaterEqual(metric(self.http_port, "starling_auth_http_timeouts_total"), 1)
        self.assertGreaterEqual(metric(self.http_port, "starling_auth_http_total",
                                       question="connect", answer="failed"), 1)

    def test_service_down_fails_closed(self):
        self.start_broker(http_auth="timeout_ms = 1000")
        self.service.stop()
        _, ack = self.connack(username="u", password=b"p")
        self.assertEqual(ack.reason_code, RC_SERVER_UNAVAILABLE)
        self.assertGreaterEqual(metric(self.http_port, "starling_auth_http_total",
                                       question="connect", answer="failed"), 1)
        self.service.start()
        _, ack = self.connack(username="u", password=b"p")
        self.assertEqual(ack.reason_code, RC_SUCCESS)

    def test_on_error_ignore_falls_through(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), unique("pw"))
        self.addCleanup(lambda: os.path.exists(path) and os.remove(path))
        self.assertEqual(starling_passwd("-c", "-b", path, "carol", "pw").returncode, 0)
        self.start_broker(http_auth='on_error = "ignore"\ntimeout_ms = 300',
                          auth_extra=f'password_file = "{path}"')
        self.service.stop()
        _, ack = self.connack(username="carol", password=b"pw")
        self.assertEqual(ack.reason_code, RC_SUCCESS)

    def test_cache_answers_repeated_connects(self):
        self.start_broker(http_auth="cache_ttl_s = 60")
        for _ in range(5):
            c, ack = self.connack("cached-dev", username="dev", password=b"token")
            self.assertEqual(ack.reason_code, RC_SUCCESS)
            c.close()
        self.assertEqual(self.service.count("/auth"), 1)
        self.assertEqual(metric(self.http_port, "starling_auth_http_total",
                                question="connect", answer="cached"), 4)
        # Another password is another question.
        _, ack = self.connack("cached-dev", username="dev", password=b"other")
        self.assertEqual(self.service.count("/auth"), 2)

    def test_answer_rules_and_superuser(self):
        self.start_broker()

        def answer(req):
            if req["username"] == "root":
                return 200, {"result": "allow", "is_superuser": True}
            return 200, {"result": "allow", "acl": [
                {"permission": "allow", "action": "publish", "topic": "devices/${clientid}/#"},
                {"permission": "deny", "action": "all", "topic": "#"}]}
        self.service.connect_answer = answer
        dev = RawClient(self.port, 5)
        self.addCleanup(dev.close)
        self.assertEqual(dev.connect("d7", username="dev", password=b"p").reason_code, 0)
        dev.publish("devices/d7/temp", b"1", qos=1, packet_id=1)
        self.assertEqual(dev.expect(PUBACK).reason_code, 0x10)  # allowed, no subscriber
        dev.publish("devices/d8/temp", b"1", qos=1, packet_id=2)
        self.assertEqual(dev.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        self.assertEqual(dev.subscribe("devices/#").reason_codes, [RC_NOT_AUTHORIZED])
        root = RawClient(self.port, 5)
        self.addCleanup(root.close)
        self.assertEqual(root.connect("r1", username="root", password=b"p").reason_code, 0)
        self.assertEqual(root.subscribe("$SYS/#").reason_codes, [0])

    # -- acl_url
    def test_acl_url_decides_publish_and_subscribe(self):
        self.start_broker(http_auth=f'acl_url = "{self.service.url("/acl")}"')

        def acl(req):
            ok = not req["topic"].startswith("secret")
            return 200, {"result": "allow" if ok else "deny"}
        self.service.acl_answer = acl
        sub = RawClient(self.port, 5)
        self.addCleanup(sub.close)
        self.assertEqual(sub.connect("s1", username="u", password=b"p").reason_code, 0)
        self.assertEqual(sub.subscribe([("open/#", 1), ("secret/#", 1)]).reason_codes,
                         [1, RC_NOT_AUTHORIZED])
        pub = RawClient(self.port, 5)
        self.addCleanup(pub.close)
        self.assertEqual(pub.connect("p1", username="u", password=b"p").reason_code, 0)
        pub.publish("secret/x", b"no", qos=1, packet_id=1)
        self.assertEqual(pub.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        pub.publish("open/x", b"yes", qos=1, packet_id=2)
        self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        msg = sub.expect(PUBLISH)
        self.assertEqual((msg.topic, msg.payload), ("open/x", b"yes"))
        bodies = self.service.bodies("/acl")
        self.assertIn({"clientid": "p1", "username": "u", "peerhost": HOST, "action": "publish",
                       "topic": "secret/x", "qos": 1, "retain": False}, bodies)
        # Asked once per topic: the answers are cached.
        asked = self.service.count("/acl")
        for i in range(3):
            pub.publish("open/x", b"again", qos=1, packet_id=10 + i)
            self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        self.assertEqual(self.service.count("/acl"), asked)

    def test_held_publish_keeps_the_order(self):
        self.start_broker(http_auth=f'acl_url = "{self.service.url("/acl")}"\ncache_ttl_s = 0')
        self.service.delay = 0.2  # every answer is slow: each publish waits for it
        sub = RawClient(self.port, 5)
        self.addCleanup(sub.close)
        self.assertEqual(sub.connect("o-sub", username="u", password=b"p").reason_code, 0)
        self.assertEqual(sub.subscribe([("order/#", 1)]).reason_codes, [1])
        pub = RawClient(self.port, 5)
        self.addCleanup(pub.close)
        self.assertEqual(pub.connect("o-pub", username="u", password=b"p").reason_code, 0)
        for i in range(5):  # sent back to back: the broker holds the ones behind the first
            pub.publish(f"order/{i}", str(i).encode(), qos=1, packet_id=i + 1)
        acks = [pub.expect(PUBACK, timeout=10) for _ in range(5)]
        self.assertEqual([a.packet_id for a in acks], [1, 2, 3, 4, 5])
        got = [sub.expect(PUBLISH, timeout=10).payload for _ in range(5)]
        self.assertEqual(got, [b"0", b"1", b"2", b"3", b"4"])

    def test_will_topic_refused_by_acl_url(self):
        self.start_broker(http_auth=f'acl_url = "{self.service.url("/acl")}"')
        self.service.acl_answer = lambda req: (200, {"result": "deny"})
        _, ack = self.connack(username="u", password=b"p", will={"topic": "wills/x", "payload": b"bye"})
        self.assertEqual(ack.reason_code, RC_NOT_AUTHORIZED)
        self.assertEqual(self.service.bodies("/acl")[-1]["topic"], "wills/x")

    def test_bad_answers_fail_closed(self):
        self.start_broker(http_auth="cache_ttl_s = 0")
        for status, body in [(200, b"not json"), (200, {"result": "maybe"}), (500, None),
                             (403, {"result": "allow"})]:
            self.service.connect_answer = lambda req, s=status, b=body: (s, b)
            _, ack = self.connack(username="u", password=b"p")
            self.assertEqual(ack.reason_code, RC_SERVER_UNAVAILABLE, (status, body))
        self.service.connect_answer = lambda req: (204, None)  # EMQX: 204 is allow
        _, ack = self.connack(username="u", password=b"p")
        self.assertEqual(ack.reason_code, RC_SUCCESS)



class HttpsAuthTest(BrokerTestCase):
    """The service over HTTPS: its certificate is checked against ca_file."""
    broker_scope = None

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory(prefix="https-auth-")
        self.addCleanup(tmp.cleanup)
        self.pki = make_pki(tmp.name)
        self.service = HookService(tls=(self.pki.server_cert, self.pki.server_key))
        self.addCleanup(self.service.close)

    def connack(self, ca_file):
        broker = self.new_broker(http=True, config_text=f"""
[auth.http]
connect_url = "{self.service.url('/auth')}"
ca_file = "{ca_file}"
timeout_ms = 2000
""")
        c = RawClient(broker.port, 5)
        self.addCleanup(c.close)
        return c.connect(unique("tls"), username="u", password=b"p").reason_code, broker

    def test_trusted_service(self):
        rc, _ = self.connack(self.pki.ca_cert)
        self.assertEqual(rc, RC_SUCCESS)
        self.assertEqual(self.service.count("/auth"), 1)

    def test_untrusted_certificate_fails_closed(self):
        rc, broker = self.connack(self.pki.other_ca_cert)
        self.assertEqual(rc, RC_SERVER_UNAVAILABLE)
        self.assertEqual(self.service.count("/auth"), 0)
        self.assertIn("auth service (connect): no usable answer", broker.log())


if __name__ == "__main__":
    unittest.main()
