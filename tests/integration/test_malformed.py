"""Malformed packets and protocol errors: the broker closes the offending connection (a 5.0
client may first get a DISCONNECT with the reason), nothing from the bad packet is applied
(no delivery, no subscription), and the broker keeps serving new clients normally."""

import struct
import unittest

from harness import BrokerTestCase, unique
from mqtt_raw import (CONNACK, PUBACK, PUBLISH, RawClient, check_broker_serves, encode_connect,
                      encode_publish, encode_string, encode_varint, fixed_header)

RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
# What a 5.0 DISCONNECT may say before the close (None: closed without DISCONNECT).
MALFORMED_OR_CLOSE = (None, RC_MALFORMED)
ANY_ERROR_OR_CLOSE = (None, RC_MALFORMED, RC_PROTOCOL_ERROR)


class MalformedTest(BrokerTestCase):

    def setUp(self):
        super().setUp()
        self.base = unique("bad")
        # Watches everything under this test's topics, to prove nothing bad was delivered.
        self.watcher = RawClient(self.port)
        self.addCleanup(self.watcher.close)
        self.watcher.connect(unique("watch"))
        self.watcher.subscribe([(f"{self.base}/#", 1)])

    def assert_rejected(self, data, versions=(4, 5), allowed=MALFORMED_OR_CLOSE, connect=True):
        """Sends data on a fresh connection per version; asserts the broker closes it (5.0: a
        DISCONNECT, if any, carries one of `allowed`), sends nothing else, delivers nothing,
        and still serves new clients."""
        for version in versions:
            with self.subTest(version=version):
                c = self.raw_client(version, connect=connect)
                c.send_bytes(data(version) if callable(data) else data)
                reason = c.wait_closed(5)
                self.assertIn(reason, allowed if version == 5 else (None,))
                self.assertEqual(c.skipped, [])
        self.assertEqual(self.watcher.collect(1.0), [])
        check_broker_serves(self.port)

    @staticmethod
    def props(version):
        """An empty property block on 5.0, nothing on 3.1.1."""
        return b"\x00" if version == 5 else b""


class FramingErrors(MalformedTest):

    def test_garbage_as_first_packet(self):
        """An HTTP request instead of CONNECT: closed, nothing sent back."""
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", versions=(5,),
                             allowed=(None,), connect=False)

    def test_reserved_packet_type_0_as_first_packet(self):
        """Packet type 0 is reserved: closed without a CONNACK."""
        self.assert_rejected(b"\x00\x00", versions=(5,), allowed=(None,), connect=False)

    def test_remaining_length_of_five_bytes(self):
        """A Remaining Length varint longer than 4 bytes is malformed: closed, both as the first
        packet and after a successful CONNECT."""
        five = b"\xff\xff\xff\xff\x01"
        self.assert_rejected(b"\x10" + five, versions=(5,), allowed=(None,), connect=False)
        self.assert_rejected(b"\x30" + five)

    def test_reserved_type_15_in_v311(self):
        """AUTH (type 15) does not exist in 3.1.1: closed."""
        self.assert_rejected(fixed_header(15, 0, b""), versions=(4,))

    def test_pubrel_with_wrong_fixed_header_flags(self):
        """PUBREL must have flags 0b0010 [MQTT-3.6.1-1]; flags 0 is malformed: closed."""
        self.assert_rejected(fixed_header(6, 0, b"\x00\x01"))


class PublishErrors(MalformedTest):

    def test_truncated_property_v5(self):
        """A 5.0 PUBLISH whose property block ends inside a Message Expiry Interval (4 bytes
        needed, 2 present): DISCONNECT 0x81 (Malformed Packet), then close; not delivered."""
        body = encode_string(f"{self.base}/t") + b"\x03\x02\x00\x00" + b"payload"
        self.assert_rejected(fixed_header(PUBLISH, 0, body), versions=(5,),
                             allowed=(RC_MALFORMED,))

    def test_property_length_beyond_packet_v5(self):
        """A property length that runs past the end of the packet: DISCONNECT 0x81, close."""
        body = encode_string(f"{self.base}/t") + b"\x05\x02\x00\x00"
        self.assert_rejected(fixed_header(PUBLISH, 0, body), versions=(5,),
                             allowed=(RC_MALFORMED,))

    def test_duplicate_property_v5(self):
        """Payload Format Indicator twice is a protocol error: closed, not delivered."""
        body = encode_string(f"{self.base}/t") + b"\x04\x01\x01\x01\x01" + b"x"
        self.assert_rejected(fixed_header(PUBLISH, 0, body), versions=(5,),
                             allowed=ANY_ERROR_OR_CLOSE)

    def test_qos1_with_packet_id_zero(self):
        """QoS 1 PUBLISH with packet id 0 [MQTT-2.2.1-3]: closed, no PUBACK, not delivered."""
        self.assert_rejected(
            lambda v: encode_publish(f"{self.base}/t", b"x", qos=1, packet_id=0, version=v),
            allowed=ANY_ERROR_OR_CLOSE)

    def test_invalid_utf8_in_topic(self):
        """Topic names must be well-formed UTF-8 without U+0000 [MQTT-1.5.4-1/2]: an invalid
        byte, an encoded surrogate and a NUL each close the connection; nothing delivered."""
        for bad in (b"\xff\xfe", b"\xed\xa0\x80", b"a\x00b"):
            with self.subTest(bytes=bad):
                topic = f"{self.base}/".encode() + bad
                self.assert_rejected(lambda v: encode_publish(topic, b"x", qos=1, packet_id=1,
                                                              version=v))

    def test_topic_length_beyond_packet(self):
        """A topic length of 5 in a packet with no bytes after it: closed."""
        self.assert_rejected(fixed_header(PUBLISH, 0, b"\x00\x05"))


class ControlPacketErrors(MalformedTest):

    def subscribe_body(self, version, topic_filter):
        return (struct.pack("!H", 1) + self.props(version) + encode_string(topic_filter)
                + b"\x01")

    def test_subscribe_reserved_flags_not_applied(self):
        """SUBSCRIBE with fixed header 0x80 instead of 0x82 [MQTT-3.8.1-1]: closed; and the
        subscription was not made: the persistent session, resumed afterwards, receives a
        message on a filter subscribed properly before but nothing on the bad filter."""
        for version in (4, 5):
            with self.subTest(version=version):
                cid = unique("badsub")
                good, bad = f"{self.base}/v{version}/good", f"{self.base}/v{version}/bad"
                session = {"properties": {"session_expiry_interval": 60}} if version == 5 else {}
                c = RawClient(self.port, version)
                self.addCleanup(c.close)
                # A session that outlives the connection: 5.0 session expiry, 3.1.1 clean 0.
                ack = c.connect(cid, clean_start=(version == 5), **session)
                self.assertEqual(ack.reason_code, 0)
                self.addCleanup(self.end_session, cid, version)
                self.assertEqual(c.subscribe([(good, 1)]).reason_codes, [1])
                body = self.subscribe_body(version, bad)
                c.send_bytes(b"\x80" + encode_varint(len(body)) + body)
                self.assertIn(c.wait_closed(5), MALFORMED_OR_CLOSE if version == 5 else (None,))
                self.assertEqual(c.skipped, [])  # no SUBACK
                again = RawClient(self.port, version)
                self.addCleanup(again.close)
                self.assertTrue(again.connect(cid, clean_start=False, **session).session_present)
                pub = self.raw_client(5)
                pub.publish(bad, b"must-not-arrive", qos=1)
                pub.expect(PUBACK)
                pub.publish(good, b"control", qos=1)
                pub.expect(PUBACK)
                got = again.collect(1.5, quiet=1.0)
                self.assertEqual([(m.topic, m.payload) for m in got], [(good, b"control")])
                again.close()
        self.watcher.collect(0.2)  # the watcher legitimately saw the probe messages
        check_broker_serves(self.port)

    def end_session(self, cid, version):
        with RawClient(self.port, version) as c:
            c.connect(cid, clean_start=True)
            c.disconnect()

    def test_connect_reserved_flag_bit(self):
        """CONNECT with the reserved flag bit 0 set [MQTT-3.1.2-3]: closed; if a 5.0 CONNACK
        is sent first it must refuse (reason >= 0x80)."""
        for version in (4, 5):
            with self.subTest(version=version):
                data = bytearray(encode_connect(unique("rsv"), version=version))
                data[9] |= 0x01  # connect flags: after header(2) + "MQTT"(6) + level(1)
                c = self.raw_client(version, connect=False)
                c.send_bytes(data)
                self.assertIsNone(c.wait_closed(5))
                for p in c.skipped:
                    self.assertEqual(p.type, CONNACK)
                    self.assertGreaterEqual(p.reason_code, 0x80 if version == 5 else 1)
        check_broker_serves(self.port)


if __name__ == "__main__":
    unittest.main()
