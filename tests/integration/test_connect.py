"""CONNECT / CONNACK for MQTT 3.1, 3.1.1 and 5.0: versions, client ids, session takeover,
keep alive, the first and second CONNECT, limits advertised and enforced (packet size, server
keep alive) and authentication methods. Drives the broker with mqtt_raw.RawClient so every
return code and property on the wire is checked exactly."""

import time
import unittest

from harness import Broker, BrokerTestCase, against_mosquitto, unique
from mqtt_raw import (CONNACK, DISCONNECT, PINGRESP, PUBACK, PUBLISH, RawClient,
                      check_broker_serves, encode_connect, encode_publish, PINGREQ_BYTES)

# 5.0 reason codes / 3.1.1 return codes used below.
RC_V311_UNACCEPTABLE_PROTOCOL = 0x01
RC_V311_IDENTIFIER_REJECTED = 0x02
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_BAD_AUTH_METHOD = 0x8C
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_PACKET_TOO_LARGE = 0x95


class ProtocolVersions(BrokerTestCase):

    def test_mqtt31_connect(self):
        """3.1 ("MQIsdp", level 3) is accepted with return code 0 and a 2-byte CONNACK
        (no properties), and the connection then works (PINGREQ -> PINGRESP)."""
        c = self.raw_client(3, connect=False)
        ack = c.connect(unique("v31"))
        self.assertEqual(ack.reason_code, 0)
        self.assertFalse(ack.session_present)
        self.assertEqual(ack.properties, {})
        c.ping()
        self.assertEqual(c.expect(PINGRESP).type, PINGRESP)

    def test_mqtt311_connect(self):
        """3.1.1 (level 4) is accepted; a clean session never has session present."""
        c = self.raw_client(4, connect=False)
        ack = c.connect(unique("v311"), clean_start=True)
        self.assertEqual((ack.reason_code, ack.session_present, ack.properties), (0, False, {}))
        c.ping()
        c.expect(PINGRESP)

    def test_mqtt5_connect(self):
        """5.0 (level 5) is accepted with reason code 0 and no session present on clean start."""
        c = self.raw_client(5, connect=False)
        ack = c.connect(unique("v5"), clean_start=True)
        self.assertEqual((ack.reason_code, ack.session_present), (0, False))
        c.ping()
        c.expect(PINGRESP)

    def test_unsupported_protocol_level_refused(self):
        """A CONNECT with protocol level 6 (unknown) is answered with a CONNACK refusing it
        (3.1.1 style return code 0x01, or 5.0 style 0x84) and the connection is closed."""
        c = self.raw_client(5, connect=False)  # decodes a 2-byte (3.1.1) or a 5.0 CONNACK
        c.send(encode_connect(unique("lvl6"), version=6))
        ack = c.expect(CONNACK)
        self.assertIn(ack.reason_code,
                      (RC_V311_UNACCEPTABLE_PROTOCOL, RC_UNSUPPORTED_PROTOCOL_VERSION))
        self.assertIsNone(c.wait_closed(3))

    def test_protocol_level_2_refused(self):
        """Level 2 (pre-3.1) is refused with 3.1.1 return code 0x01 and closed."""
        c = self.raw_client(4, connect=False)
        c.send(encode_connect(unique("lvl2"), version=2))
        self.assertEqual(c.expect(CONNACK).reason_code, RC_V311_UNACCEPTABLE_PROTOCOL)
        self.assertIsNone(c.wait_closed(3))


class Connack5Properties(BrokerTestCase):

    def test_advertised_properties_are_valid(self):
        """The 5.0 CONNACK's limits are well formed: Receive Maximum and Topic Alias Maximum are
        present (Starling and Mosquitto both have non-default values to announce), every
        advertised limit is in range, and flags are 0 or 1."""
        c = self.raw_client(connect=False)
        props = c.connect(unique("props")).properties
        self.assertIn("receive_maximum", props)
        self.assertGreater(props["receive_maximum"], 0)
        self.assertIn("topic_alias_maximum", props)
        if "maximum_packet_size" in props:
            self.assertGreater(props["maximum_packet_size"], 0)
        if "maximum_qos" in props:
            self.assertIn(props["maximum_qos"], (0, 1))  # 2 is expressed by absence
        for flag in ("retain_available", "wildcard_subscription_available",
                     "shared_subscription_available", "subscription_identifier_available"):
            if flag in props:
                self.assertIn(props[flag], (0, 1), flag)
        self.assertNotIn("assigned_client_identifier", props)  # we sent an id

    def test_advertised_features_work(self):
        """What the CONNACK says is available (absent = available) really is: a wildcard
        subscription, a shared subscription and a subscription identifier are granted, and the
        identifier comes back on a delivered message."""
        c = self.raw_client(connect=False)
        props = c.connect(unique("feat")).properties
        base = unique("feat")
        if props.get("wildcard_subscription_available", 1):
            self.assertEqual(c.subscribe([(f"{base}/w/#", 1)]).reason_codes, [1])
        if props.get("shared_subscription_available", 1):
            self.assertEqual(c.subscribe([(f"$share/g/{base}/s", 1)]).reason_codes, [1])
        if props.get("subscription_identifier_available", 1):
            ack = c.subscribe([(f"{base}/id", 1)], properties={"subscription_identifier": 42})
            self.assertEqual(ack.reason_codes, [1])
            c.publish(f"{base}/id", b"x", qos=0)
            msg = c.expect(PUBLISH)
            self.assertEqual(msg.properties.get("subscription_identifier"), [42])

    def test_connack_reflects_configured_limits(self):
        """Configured limits are announced exactly: Maximum Packet Size, Receive Maximum,
        Topic Alias Maximum, Maximum QoS 1 and Retain Available 0."""
        starling = ("[mqtt]\nmax_packet_size = 5000\nreceive_maximum = 7\n"
                    "topic_alias_maximum = 3\nmax_qos = 1\nretain_available = false\n")
        mosquitto = ("max_packet_size 5000\nmax_inflight_messages 7\nmax_topic_alias 3\n"
                     "max_qos 1\nretain_available false\n")
        with Broker(config_text=starling, mosquitto_config=mosquitto) as b, \
                RawClient(b.port) as c:
            p = c.connect(unique("cfg")).properties
            self.assertEqual(
                (p.get("maximum_packet_size"), p.get("receive_maximum"),
                 p.get("topic_alias_maximum"), p.get("maximum_qos"), p.get("retain_available")),
                (5000, 7, 3, 1, 0))

    @unittest.skipIf(against_mosquitto(), "needs Starling config (Mosquitto cannot turn off "
                     "wildcard/shared subscriptions or subscription identifiers)")
    def test_connack_reflects_disabled_features(self):
        """Features switched off in the config are announced as 0 in the CONNACK."""
        conf = ("[mqtt]\nwildcard_subscriptions = false\nshared_subscriptions = false\n"
                "subscription_identifiers = false\n")
        with Broker(config_text=conf) as b, RawClient(b.port) as c:
            p = c.connect(unique("off")).properties
            self.assertEqual((p.get("wildcard_subscription_available"),
                              p.get("shared_subscription_available"),
                              p.get("subscription_identifier_available")), (0, 0, 0))


@unittest.skipIf(against_mosquitto(), "[mqtt] response_information is Starling's setting")
class ResponseInformation(BrokerTestCase):
    """Response Information (0x1A, [MQTT-3.1.2-28]): sent only to a client that asks for it
    (Request Response Information 1), only when configured, and left out when the CONNACK would
    exceed the client's Maximum Packet Size ([MQTT-3.1.2-24])."""

    broker_scope = None  # each test starts a broker with its own config

    def test_sent_when_asked_and_configured(self):
        with Broker(config_text='[mqtt]\nresponse_information = "replies/"\n') as b:
            asked = RawClient(b.port)
            self.addCleanup(asked.close)
            p = asked.connect(unique("ri"), properties={"request_response_information": 1})
            self.assertEqual(p.properties.get("response_information"), "replies/")
            quiet = RawClient(b.port)
            self.addCleanup(quiet.close)
            self.assertNotIn("response_information", quiet.connect(unique("ri")).properties)
            # The CONNACK is 35 bytes with the Response Information, 24 without it.
            small = RawClient(b.port)
            self.addCleanup(small.close)
            ack = small.connect(unique("ri"), properties={"request_response_information": 1,
                                                          "maximum_packet_size": 30})
            self.assertEqual(ack.reason_code, 0)
            self.assertNotIn("response_information", ack.properties)
            self.assertLessEqual(ack.wire_size, 30)

    def test_not_sent_when_not_configured(self):
        with Broker() as b, RawClient(b.port) as c:
            ack = c.connect(unique("ri"), properties={"request_response_information": 1})
            self.assertNotIn("response_information", ack.properties)

    def test_bad_value_fails_at_start(self):
        b = self.new_broker(start=False, config_text="[mqtt]\nresponse_information = 7\n")
        with self.assertRaises(RuntimeError) as e:
            b.start()
        self.assertIn("response_information", str(e.exception))


class ClientIdentifiers(BrokerTestCase):

    def test_v5_empty_id_gets_assigned_identifier(self):
        """A 5.0 client with an empty client id is accepted and told its Assigned Client
        Identifier; two such clients get different identifiers."""
        ids = []
        for _ in range(2):
            c = self.raw_client(connect=False)
            ack = c.connect("")
            self.assertEqual(ack.reason_code, 0)
            assigned = ack.properties.get("assigned_client_identifier")
            self.assertIsInstance(assigned, str)
            self.assertGreater(len(assigned), 0)
            ids.append(assigned)
        self.assertNotEqual(ids[0], ids[1])

    def test_v311_empty_id_clean_session_accepted(self):
        """3.1.1 allows an empty client id with clean session 1 (the server assigns one)."""
        c = self.raw_client(4, connect=False)
        self.assertEqual(c.connect("", clean_start=True).reason_code, 0)
        c.ping()
        c.expect(PINGRESP)

    def test_v311_empty_id_persistent_session_refused(self):
        """3.1.1 [MQTT-3.1.3-8]: empty client id with clean session 0 -> return code 0x02
        (identifier rejected), then the server closes the connection."""
        c = self.raw_client(4, connect=False)
        ack = c.connect("", clean_start=False)
        self.assertEqual(ack.reason_code, RC_V311_IDENTIFIER_REJECTED)
        self.assertIsNone(c.wait_closed(3))

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 accepts longer MQTT 3.1 client ids "
                     "(3.1 section 3.1 limits them to 23 characters)")
    def test_v31_id_longer_than_23_refused(self):
        """3.1 (section 3.1, like Mosquitto): a 24-character client id gets return code 0x02;
        23 characters are accepted. 3.1.1 takes the 24 characters."""
        c = self.raw_client(3, connect=False)
        self.assertEqual(c.connect("x" * 24).reason_code, RC_V311_IDENTIFIER_REJECTED)
        self.assertIsNone(c.wait_closed(3))
        self.raw_client(3, client_id=unique("v31")[:23])  # accepted: raw_client asserts CONNACK 0
        self.raw_client(4, client_id=unique("v311-longer-id"))

    def test_v31_connack_has_no_session_present_flag(self):
        """3.1 has no session present flag: a persistent 3.1 session taken up again gets a
        CONNACK whose flags byte is 0 (3.1.1 gets session present 1)."""
        for version, expected in ((3, False), (4, True)):
            with self.subTest(version=version):
                cid = unique("sp")[:23]
                first = self.raw_client(version, connect=False)
                self.assertEqual(first.connect(cid, clean_start=False).reason_code, 0)
                first.disconnect()
                first.close()
                again = self.raw_client(version, connect=False)
                ack = again.connect(cid, clean_start=False)
                self.assertEqual((ack.reason_code, ack.session_present), (0, expected))

    def test_v31_empty_id_refused(self):
        """3.1 requires a client id of 1 to 23 characters: an empty one gets return code 0x02."""
        c = self.raw_client(3, connect=False)
        self.assertEqual(c.connect("").reason_code, RC_V311_IDENTIFIER_REJECTED)
        self.assertIsNone(c.wait_closed(3))


class SessionTakeover(BrokerTestCase):

    def test_takeover_closes_first_connection(self):
        """A second connection with the same client id is accepted and the first one is closed
        (3.1.1 and 5.0); the new connection keeps working."""
        for version in (4, 5):
            with self.subTest(version=version):
                cid = unique("takeover")
                first, second = (self.raw_client(version, connect=False) for _ in range(2))
                self.assertEqual(first.connect(cid).reason_code, 0)
                self.assertEqual(second.connect(cid).reason_code, 0)
                reason = first.wait_closed(5)
                if version == 4:
                    self.assertIsNone(reason)
                else:
                    self.assertIn(reason, (None, RC_SESSION_TAKEN_OVER))
                second.ping()
                second.expect(PINGRESP)

    def test_persistent_takeover_of_a_clean_session_starts_afresh(self):
        """[MQTT-3.1.2-6]: a clean session (3.1.1 CleanSession 1; 5.0 Session Expiry 0) ends with
        its connection, so a CleanSession 0 connection taking it over gets Session Present 0 and
        none of its subscriptions."""
        for version in (4, 5):
            with self.subTest(version=version):
                cid, topic = unique("clean-takeover"), unique("clean-takeover")
                first = self.raw_client(version, connect=False)
                self.assertEqual(first.connect(cid, clean_start=True).reason_code, 0)
                first.subscribe([(topic, 1)])
                second = self.raw_client(version, connect=False)
                props = {"session_expiry_interval": 60} if version == 5 else None
                ack = second.connect(cid, clean_start=False, properties=props)
                self.assertEqual((ack.reason_code, ack.session_present), (0, False))
                pub = self.raw_client(connect=False)
                pub.connect(unique("clean-takeover-pub"))
                pub.publish(topic, b"for the old subscription", qos=1)
                pub.expect(PUBACK)
                self.assertEqual([p for p in second.collect(1.0) if p.type == PUBLISH], [])

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 closes the old 5.0 connection "
                     "without sending DISCONNECT 0x8E (spec 3.1.4 says the server sends it)")
    def test_takeover_sends_disconnect_8e(self):
        """5.0 [MQTT-3.1.4-3]: the existing client gets DISCONNECT 0x8E (Session taken over)
        before its connection is closed."""
        cid = unique("takeover8e")
        first, second = self.raw_client(connect=False), self.raw_client(connect=False)
        first.connect(cid)
        second.connect(cid)
        self.assertEqual(first.wait_closed(5), RC_SESSION_TAKEN_OVER)


class KeepAlive(BrokerTestCase):

    def test_silent_client_disconnected(self):
        """A client with keep alive 1 s that sends nothing is disconnected (1.5 x keep alive;
        bound kept generous at 8 s). A 5.0 DISCONNECT, if sent, carries 0x8D."""
        for version in (4, 5):
            with self.subTest(version=version):
                c = self.raw_client(version, connect=False)
                self.assertEqual(c.connect(unique("silent"), keepalive=1).reason_code, 0)
                reason = c.wait_closed(8)
                self.assertIn(reason, (None, RC_KEEP_ALIVE_TIMEOUT) if version == 5 else (None,))

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 checks keep alive coarsely: it "
                     "disconnects a keepalive=1 client after 4-6 s, not 1.5 s")
    def test_silent_client_disconnected_promptly(self):
        """[MQTT-3.1.2-22] within one and a half times the keep alive: for 1 s the connection
        must be gone well within 3 s."""
        c = self.raw_client(connect=False)
        c.connect(unique("prompt"), keepalive=1)
        start = time.monotonic()
        self.assertIn(c.wait_closed(6), (None, RC_KEEP_ALIVE_TIMEOUT))
        self.assertLess(time.monotonic() - start, 3.0)

    def test_pinging_client_stays_connected(self):
        """A client with keep alive 1 s that pings every 0.4 s is still connected after 3.5 s,
        and every PINGREQ gets a PINGRESP."""
        c = self.raw_client(connect=False)
        c.connect(unique("pinger"), keepalive=1)
        pings = 0
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            c.ping()
            pings += 1
            self.assertEqual(c.expect(PINGRESP, 2).type, PINGRESP)
            time.sleep(0.4)
        c.ping()
        c.expect(PINGRESP, 2)
        self.assertGreaterEqual(pings, 6)

    def test_server_keep_alive_lowers_requested_value(self):
        """A 5.0 client asking for keep alive 60 above the configured maximum 10 gets
        Server Keep Alive = 10 in the CONNACK."""
        with Broker(config_text="[mqtt]\nmax_keep_alive = 10\n",
                    mosquitto_config="max_keepalive 10\n") as b, RawClient(b.port) as c:
            ack = c.connect(unique("ska"), keepalive=60)
            self.assertEqual(ack.reason_code, 0)
            self.assertEqual(ack.properties.get("server_keep_alive"), 10)


class ConnectSequence(BrokerTestCase):

    def test_second_connect_is_protocol_error(self):
        """A second CONNECT on an open connection is a protocol error [MQTT-3.1.0-2]: the
        connection is closed (5.0: optionally after DISCONNECT 0x82)."""
        for version in (4, 5):
            with self.subTest(version=version):
                c = self.raw_client(version, connect=False)
                cid = unique("twice")
                c.connect(cid)
                c.send(encode_connect(cid, version=version))
                reason = c.wait_closed(5)
                self.assertIn(reason, (None, RC_PROTOCOL_ERROR) if version == 5 else (None,))
                self.assertEqual(c.skipped, [])  # no second CONNACK

    def test_first_packet_not_connect_closes(self):
        """The first packet must be CONNECT [MQTT-3.1.0-1]: a PINGREQ first gets no PINGRESP
        and the connection is closed."""
        c = self.raw_client(connect=False)
        c.send(PINGREQ_BYTES)
        self.assertIsNone(c.wait_closed(5))
        self.assertEqual(c.skipped, [])

    def test_publish_before_connect_not_delivered(self):
        """A PUBLISH sent before CONNECT closes the connection and is not delivered."""
        topic = unique("early")
        sub = self.raw_client(connect=False)
        sub.connect(unique("early-sub"))
        sub.subscribe([(topic, 1)])
        c = self.raw_client(connect=False)
        c.send(encode_publish(topic, b"too-early", qos=0))
        self.assertIsNone(c.wait_closed(5))
        self.assertEqual(sub.collect(1.0), [])


class InvalidWillTopic(BrokerTestCase):

    def test_v311_empty_will_topic_closes_without_connack(self):
        """3.1.1: a will topic must be a valid topic name, at least one character long
        ([MQTT-4.7.3-1]); an empty one is a protocol violation: the connection is closed without
        a CONNACK ([MQTT-4.8.0-1]). CONNACK 3 (server unavailable) would tell the client to try
        again later."""
        c = self.raw_client(4, connect=False)
        c.send(encode_connect(unique("will"), 4, True, 60, None,
                              {"topic": "", "payload": b"x", "qos": 0}))
        self.assertIsNone(c.wait_closed(5))
        self.assertEqual(c.skipped, [])

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 closes without a CONNACK; 5.0 "
                     "gives the server a reason code for it (0x90)")
    def test_v5_empty_will_topic_gets_connack_90(self):
        """5.0 has a CONNACK reason code for it: 0x90 (Topic Name invalid), then the close."""
        c = self.raw_client(connect=False)
        ack = c.connect(unique("will"), will={"topic": "", "payload": b"x", "qos": 0})
        self.assertEqual(ack.reason_code, 0x90)
        self.assertIsNone(c.wait_closed(5))


class PacketSize(BrokerTestCase):

    def test_client_maximum_packet_size_respected(self):
        """A client advertising Maximum Packet Size 100 is not sent a 500-byte message it
        subscribed to (the server drops it, [MQTT-3.1.2-24]); a small message published
        after it still arrives, and is the only one."""
        topic = unique("mps")
        sub = self.raw_client(connect=False)
        sub.connect(unique("mps-sub"), properties={"maximum_packet_size": 100})
        self.assertEqual(sub.subscribe([(topic, 1)]).reason_codes, [1])
        pub = self.raw_client(connect=False)
        pub.connect(unique("mps-pub"))
        pub.publish(topic, b"L" * 500, qos=1)
        pub.expect(PUBACK)
        pub.publish(topic, b"small", qos=1)
        pub.expect(PUBACK)
        got = sub.collect(2.0)
        self.assertEqual([(p.type, p.payload) for p in got], [(PUBLISH, b"small")])
        self.assertTrue(all(len(p.payload) < 100 for p in got))

    def test_broker_maximum_packet_size_enforced(self):
        """A packet larger than the broker's maximum (1000) ends the connection: 5.0 gets
        DISCONNECT 0x95 (Packet too large) first, 3.1.1 is closed. The message is not
        delivered, and the broker keeps serving."""
        with Broker(config_text="[mqtt]\nmax_packet_size = 1000\n",
                    mosquitto_config="max_packet_size 1000\n") as b:
            topic = unique("big")
            with RawClient(b.port) as sub:
                sub.connect(unique("big-sub"))
                sub.subscribe([(topic, 1)])
                for version in (4, 5):
                    with self.subTest(version=version), RawClient(b.port, version) as c:
                        ack = c.connect(unique("big"))
                        self.assertEqual(ack.reason_code, 0)
                        if version == 5:
                            self.assertEqual(ack.properties.get("maximum_packet_size"), 1000)
                        c.publish(topic, b"x" * 1500, qos=1)
                        reason = c.wait_closed(5)
                        self.assertEqual(reason, RC_PACKET_TOO_LARGE if version == 5 else None)
                self.assertEqual(sub.collect(1.0), [])
            check_broker_serves(b.port)


class Authentication(BrokerTestCase):

    def test_unknown_authentication_method_refused(self):
        """5.0 CONNECT with an Authentication Method the broker does not support gets
        CONNACK 0x8C (Bad authentication method) and the connection is closed."""
        c = self.raw_client(connect=False)
        ack = c.connect(unique("auth"), properties={"authentication_method": "X-UNKNOWN-1"})
        self.assertEqual(ack.reason_code, RC_BAD_AUTH_METHOD)
        self.assertIsNone(c.wait_closed(3))
        self.assertEqual(c.skipped, [])


if __name__ == "__main__":
    unittest.main()
