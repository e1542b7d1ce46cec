"""PUBLISH at QoS 0/1/2 in both directions, for 3.1.1 and 5.0: the acknowledgement flow and
packet ids on the wire (mqtt_raw.RawClient), end-to-end delivery through paho, QoS downgrade,
exactly-once for QoS 2, mixed protocol versions, 5.0 property pass-through, message expiry,
and PUBLISHes the broker must refuse (wildcard topic, QoS 3)."""

import itertools
import time
import unittest

from harness import BrokerTestCase, against_mosquitto, unique
from mqtt_raw import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, RawClient, check_broker_serves,
                      encode_ack, encode_string, fixed_header)

RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_NOT_FOUND = 0x92


class PublishTest(BrokerTestCase):
    """One broker for the class; clients are closed after each test."""

    def subscriber(self, topic, qos, version=5):
        c = self.raw_client(version)
        self.assertEqual(c.subscribe([(topic, qos)]).reason_codes, [qos])
        return c


@unittest.skipIf(against_mosquitto(), "Starling's refusal codes for reserved topics")
class ReservedTopics(PublishTest):
    """Clients cannot publish to $SYS (they could spoof the broker's statistics, retained for
    every later $SYS subscriber) nor to $share (a subscription prefix, not a topic): 5.0 QoS
    1/2 get 0x87 Not authorized, 3.1.1 and QoS 0 are acknowledged as the protocol requires and
    dropped; a $SYS subscriber never sees them, and nothing is retained."""

    def test_sys_and_share_publishes_are_refused_and_not_delivered(self):
        watcher = self.subscriber("$SYS/spoof/#", 0)
        pub5, pub311 = self.raw_client(5), self.raw_client(4)
        for topic in ("$SYS/spoof/clients", "$share/g/t"):
            with self.subTest(topic=topic):
                pub5.publish(topic, b"fake", qos=0, retain=True)
                pid = pub5.publish(topic, b"fake", qos=1, retain=True)
                ack = pub5.expect(PUBACK)
                self.assertEqual((ack.packet_id, ack.reason_code), (pid, 0x87))
                pid = pub5.publish(topic, b"fake", qos=2)
                rec = pub5.expect(PUBREC)
                self.assertEqual((rec.packet_id, rec.reason_code), (pid, 0x87))
                pid = pub311.publish(topic, b"fake", qos=1, retain=True)
                self.assertEqual(pub311.expect(PUBACK).packet_id, pid)
        self.assertEqual(watcher.collect(1.0), [])
        late = self.raw_client(5)  # a retained copy would arrive on SUBSCRIBE
        late.subscribe([("$SYS/spoof/#", 0)])
        self.assertEqual(late.collect(1.0), [])


class InboundAcks(PublishTest):
    """Client -> broker: the acks the broker sends back."""

    def test_qos0_has_no_ack(self):
        """A QoS 0 PUBLISH gets no acknowledgement and is delivered without a packet id."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("q0")
                sub = self.subscriber(topic, 2, version)
                pub = self.raw_client(version)
                pub.publish(topic, b"zero", qos=0)
                msg = sub.expect(PUBLISH)
                self.assertEqual((msg.payload, msg.qos, msg.packet_id), (b"zero", 0, None))
                self.assertEqual(pub.collect(0.5), [])

    def test_qos1_puback_carries_packet_id(self):
        """QoS 1: the broker answers PUBACK with the same packet id (5.0 reason 0 when there is
        a subscriber)."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("q1")
                sub = self.subscriber(topic, 1, version)
                pub = self.raw_client(version)
                pub.publish(topic, b"one", qos=1, packet_id=0x1234)
                ack = pub.expect(PUBACK)
                self.assertEqual((ack.packet_id, ack.reason_code), (0x1234, RC_SUCCESS))
                self.assertEqual(sub.expect(PUBLISH).payload, b"one")

    def test_qos1_without_subscribers_is_acked(self):
        """QoS 1 to a topic nobody subscribes is still acknowledged; 5.0 may say 0x10
        (No matching subscribers) instead of 0."""
        pub = self.raw_client(5)
        pub.publish(unique("nobody"), b"x", qos=1, packet_id=9)
        ack = pub.expect(PUBACK)
        self.assertEqual(ack.packet_id, 9)
        self.assertIn(ack.reason_code, (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS))

    def test_qos2_pubrec_pubrel_pubcomp(self):
        """QoS 2: PUBREC with the packet id, then our PUBREL gets PUBCOMP with the same id;
        the subscriber gets the message exactly once."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("q2")
                sub = self.subscriber(topic, 2, version)
                pub = self.raw_client(version)
                pub.publish(topic, b"two", qos=2, packet_id=77)
                rec = pub.expect(PUBREC)
                self.assertEqual((rec.packet_id, rec.reason_code), (77, RC_SUCCESS))
                pub.pubrel(77)
                comp = pub.expect(PUBCOMP)
                self.assertEqual((comp.packet_id, comp.reason_code), (77, RC_SUCCESS))
                msgs = self.receive_qos2(sub, 1)
                self.assertEqual([m.payload for m in msgs], [b"two"])

    def receive_qos2(self, sub, n, wait=1.0):
        """Reads PUBLISHes (completing each QoS 2 flow) until n arrived and then `wait` s of
        silence; returns them all."""
        out = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            p = sub.recv_packet(wait if len(out) >= n else max(0.01, deadline - time.monotonic()))
            if p is None:
                break
            if p.type == PUBLISH:
                out.append(p)
                if p.qos == 2:
                    sub.pubrec(p.packet_id)
                elif p.qos == 1:
                    sub.puback(p.packet_id)
            elif p.type == PUBREL:
                sub.pubcomp(p.packet_id)
        return out

    def test_qos2_duplicate_before_pubrel_delivered_once(self):
        """Exactly once: a QoS 2 PUBLISH retransmitted with DUP before PUBREL is acknowledged
        again (PUBREC, same id) but delivered only once."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("dup")
                sub = self.subscriber(topic, 2, version)
                pub = self.raw_client(version)
                pub.publish(topic, b"once", qos=2, packet_id=5)
                self.assertEqual(pub.expect(PUBREC).packet_id, 5)
                pub.publish(topic, b"once", qos=2, packet_id=5, dup=True)
                self.assertEqual(pub.expect(PUBREC).packet_id, 5)
                pub.pubrel(5)
                self.assertEqual(pub.expect(PUBCOMP).packet_id, 5)
                msgs = self.receive_qos2(sub, 1)
                self.assertEqual([m.payload for m in msgs], [b"once"])

    def test_packet_id_reused_after_pubcomp_is_new_message(self):
        """After PUBCOMP the packet id is free: the same id with the same payload is a new
        message and is delivered again."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("reuse")
                sub = self.subscriber(topic, 2, version)
                pub = self.raw_client(version)
                for _ in range(2):
                    pub.publish(topic, b"same", qos=2, packet_id=42)
                    pub.expect(PUBREC)
                    pub.pubrel(42)
                    self.assertEqual(pub.expect(PUBCOMP).packet_id, 42)
                msgs = self.receive_qos2(sub, 2)
                self.assertEqual([m.payload for m in msgs], [b"same", b"same"])

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 answers a PUBREL for an unknown "
                     "packet id with PUBCOMP 0x00 instead of 0x92 (Packet Identifier not found)")
    def test_pubrel_unknown_id_gets_pubcomp_92(self):
        """5.0: PUBREL for a packet id with no QoS 2 flow gets PUBCOMP 0x92."""
        pub = self.raw_client(5)
        pub.pubrel(999)
        comp = pub.expect(PUBCOMP)
        self.assertEqual((comp.packet_id, comp.reason_code), (999, RC_PACKET_ID_NOT_FOUND))

    def test_pubrel_unknown_id_v311_gets_pubcomp(self):
        """3.1.1: PUBREL for an unknown id is still completed with PUBCOMP (same id)."""
        pub = self.raw_client(4)
        pub.pubrel(998)
        self.assertEqual(pub.expect(PUBCOMP).packet_id, 998)


class OutboundAcks(PublishTest):
    """Broker -> client: the flows the broker drives towards a subscriber."""

    def test_qos1_delivery_flow(self):
        """The broker sends QoS 1 with a non-zero packet id and DUP clear; our PUBACK ends it
        (nothing is resent on the same connection)."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("out1")
                sub = self.subscriber(topic, 1, version)
                self.raw_client(version).publish(topic, b"m", qos=1)
                msg = sub.expect(PUBLISH)
                self.assertEqual((msg.qos, msg.dup, msg.payload), (1, False, b"m"))
                self.assertNotEqual(msg.packet_id, 0)
                sub.puback(msg.packet_id)
                self.assertEqual(sub.collect(1.0), [])

    def test_qos2_delivery_flow(self):
        """The broker sends QoS 2; our PUBREC gets a PUBREL (same id, flags 0b0010); our
        PUBCOMP ends it."""
        for version in (4, 5):
            with self.subTest(version=version):
                topic = unique("out2")
                sub = self.subscriber(topic, 2, version)
                pub = self.raw_client(version)
                pid = pub.publish(topic, b"m2", qos=2)
                pub.expect(PUBREC)
                pub.pubrel(pid)
                pub.expect(PUBCOMP)
                msg = sub.expect(PUBLISH)
                self.assertEqual((msg.qos, msg.payload), (2, b"m2"))
                self.assertNotEqual(msg.packet_id, 0)
                sub.pubrec(msg.packet_id)
                rel = sub.expect(PUBREL)
                self.assertEqual((rel.packet_id, rel.flags), (msg.packet_id, 0x2))
                sub.pubcomp(msg.packet_id)
                self.assertEqual(sub.collect(1.0), [])

    @unittest.skipIf(against_mosquitto(), "Starling's answer to an ack of the wrong type")
    def test_ack_of_the_wrong_type_is_a_protocol_error(self):
        """An ack that does not belong to the message in flight with its packet id (PUBREC or
        PUBCOMP for QoS 1, PUBACK for QoS 2, PUBCOMP before PUBREC) breaks the exchange the
        spec prescribes (4.3.2, 4.3.3): 5.0 DISCONNECT 0x82, 3.1.1 the connection is closed
        ([MQTT-4.8.0-1]). An ack for a packet id with nothing in flight (a late duplicate) is
        not: PUBACK and PUBCOMP are ignored, PUBREC is answered PUBREL 0x92 (5.0)."""
        for version in (4, 5):
            for qos, wrong in ((1, PUBREC), (1, PUBCOMP), (2, PUBACK), (2, PUBCOMP)):
                with self.subTest(version=version, qos=qos, ack=wrong):
                    topic = unique("wrong-ack")
                    sub = self.subscriber(topic, qos, version)
                    self.raw_client(version).publish(topic, b"m", qos=qos)
                    msg = sub.expect(PUBLISH)
                    sub.send(encode_ack(wrong, msg.packet_id, 0, None, version))
                    self.assertEqual(sub.wait_closed(5),
                                     RC_PROTOCOL_ERROR if version == 5 else None)
            with self.subTest(version=version, unknown_ids=True):
                sub = self.subscriber(unique("late-ack"), 1, version)
                for ack in (PUBACK, PUBCOMP):
                    sub.send(encode_ack(ack, 4242, 0, None, version))
                sub.send(encode_ack(PUBREC, 4242, 0, None, version))
                rel = sub.expect(PUBREL)
                self.assertEqual((rel.packet_id, rel.reason_code or 0),
                                 (4242, RC_PACKET_ID_NOT_FOUND if version == 5 else 0))
                sub.ping()
                self.assertEqual(sub.recv_packet(5).name, "PINGRESP")  # still connected

    def test_qos_downgraded_to_subscription(self):
        """Delivered QoS = min(published QoS, subscribed QoS), for every combination."""
        base = unique("down")
        subs = {q: self.subscriber(f"{base}/#", q) for q in (0, 1, 2)}
        pub = self.raw_client()
        for pq in (0, 1, 2):
            pid = pub.publish(f"{base}/p{pq}", f"p{pq}".encode(), qos=pq)
            if pq == 1:
                pub.expect(PUBACK)
            elif pq == 2:
                pub.expect(PUBREC)
                pub.pubrel(pid)
                pub.expect(PUBCOMP)
        for sq, sub in subs.items():
            got = []
            for _ in range(3):
                m = sub.expect(PUBLISH)
                got.append((m.topic, m.qos))
                if m.qos == 1:
                    sub.puback(m.packet_id)
                elif m.qos == 2:
                    sub.pubrec(m.packet_id)
                    sub.expect(PUBREL)
                    sub.pubcomp(m.packet_id)
            self.assertEqual(got, [(f"{base}/p{pq}", min(pq, sq)) for pq in (0, 1, 2)],
                             f"subscription QoS {sq}")


class EndToEnd(PublishTest):
    """paho clients on both ends, every QoS and every version pairing."""

    def test_paho_all_qos_all_version_pairs(self):
        """A message published at QoS q by a 3.1.1 or 5.0 paho client reaches a 3.1.1 or 5.0
        paho subscriber (QoS 2 subscription) with the same topic, payload and QoS q."""
        for pv, sv in itertools.product((4, 5), (4, 5)):
            topic = unique("e2e")
            sub = self.paho_client(sv)
            self.assertEqual(sub.subscribe(topic, 2), [2])
            pub = self.paho_client(pv)
            for q in (0, 1, 2):
                pub.publish(topic, f"{pv}->{sv} q{q}".encode(), qos=q)
            got = [(m.topic, m.payload, m.qos) for m in sub.collect(3)]
            self.assertEqual(got, [(topic, f"{pv}->{sv} q{q}".encode(), q) for q in (0, 1, 2)],
                             f"publisher v{pv} subscriber v{sv}")
            pub.close()
            sub.close()


class MixedVersionsAndProperties(PublishTest):

    FULL_PROPERTIES = {
        "payload_format_indicator": 1,
        "content_type": "application/json; charset=utf-8",
        "response_topic": "reply/here",
        "correlation_data": b"\x00\x01corr\xff",
        "user_property": [("k", "v1"), ("a", "b"), ("k", "v2"), ("k", "v1"), ("", "empty-name")],
    }

    def test_properties_pass_through_unchanged(self):
        """5.0 -> 5.0: payload format indicator, content type, response topic, correlation
        data and user properties (order and repeats kept) arrive unchanged, for each QoS: 0, 1
        and 2 (each flow completed on both sides; the subscription is QoS 2, so the message
        arrives at the QoS it was published with)."""
        topic = unique("props")
        sub = self.subscriber(topic, 2)
        pub = self.raw_client()
        for q in (0, 1, 2):
            payload = f'{{"qos":{q}}}'.encode()
            pid = pub.publish(topic, payload, qos=q, properties=self.FULL_PROPERTIES)
            if q == 1:
                self.assertEqual(pub.expect(PUBACK).packet_id, pid)
            elif q == 2:
                self.assertEqual(pub.expect(PUBREC).packet_id, pid)
                pub.pubrel(pid)
                self.assertEqual(pub.expect(PUBCOMP).packet_id, pid)
            msg = sub.expect(PUBLISH)
            self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, payload, q))
            self.assertEqual(msg.properties, self.FULL_PROPERTIES, f"QoS {q}")
            if q == 1:
                sub.puback(msg.packet_id)
            elif q == 2:
                sub.pubrec(msg.packet_id)
                self.assertEqual(sub.expect(PUBREL).packet_id, msg.packet_id)
                sub.pubcomp(msg.packet_id)
        self.assertEqual(sub.collect(0.5), [])

    def test_v311_publisher_to_v5_subscriber(self):
        """3.1.1 -> 5.0: topic, payload and QoS arrive; the 5.0 PUBLISH carries no properties."""
        topic = unique("4to5")
        sub = self.subscriber(topic, 1, version=5)
        pub = self.raw_client(4)
        pub.publish(topic, b"from 3.1.1", qos=1)
        pub.expect(PUBACK)
        msg = sub.expect(PUBLISH)
        self.assertEqual((msg.topic, msg.payload, msg.qos, msg.properties),
                         (topic, b"from 3.1.1", 1, {}))

    def test_v5_publisher_to_v311_subscriber(self):
        """5.0 -> 3.1.1: properties are dropped; the 3.1.1 PUBLISH decodes cleanly with the
        exact payload (no property bytes leak into it)."""
        topic = unique("5to4")
        sub = self.subscriber(topic, 1, version=4)
        pub = self.raw_client(5)
        pub.publish(topic, b"from 5.0", qos=1,
                    properties=dict(self.FULL_PROPERTIES, message_expiry_interval=100))
        pub.expect(PUBACK)
        msg = sub.expect(PUBLISH)  # decoded as 3.1.1: trailing property bytes would show up
        self.assertEqual((msg.topic, msg.payload, msg.qos, msg.properties),
                         (topic, b"from 5.0", 1, {}))


class MessageExpiry(PublishTest):

    def test_delivered_expiry_not_above_original(self):
        """A message delivered at once carries a Message Expiry Interval in 1..original."""
        topic = unique("exp-now")
        sub = self.subscriber(topic, 1)
        self.raw_client().publish(topic, b"e", qos=0, properties={"message_expiry_interval": 60})
        msg = sub.expect(PUBLISH)
        self.assertIn("message_expiry_interval", msg.properties)
        self.assertGreater(msg.properties["message_expiry_interval"], 0)
        self.assertLessEqual(msg.properties["message_expiry_interval"], 60)

    def test_retained_message_expires(self):
        """A retained message with expiry 1 s is gone after 2 s, while one with expiry 10 s is
        still delivered with its remaining lifetime (at most 9 s, [MQTT-3.3.2-6])."""
        base = unique("exp-ret")
        pub = self.raw_client()
        pub.publish(f"{base}/short", b"short", qos=1, retain=True,
                    properties={"message_expiry_interval": 1})
        pub.expect(PUBACK)
        pub.publish(f"{base}/long", b"long", qos=1, retain=True,
                    properties={"message_expiry_interval": 10})
        pub.expect(PUBACK)
        time.sleep(2.2)
        sub = self.raw_client()
        sub.subscribe([(f"{base}/#", 1)])
        got = sub.collect(1.5, quiet=1.0)
        self.assertEqual([(m.topic, m.payload) for m in got], [(f"{base}/long", b"long")])
        remaining = got[0].properties.get("message_expiry_interval")
        self.assertIsNotNone(remaining)
        self.assertGreater(remaining, 0)
        self.assertLessEqual(remaining, 9)
        # clear the retained message
        pub.publish(f"{base}/long", b"", qos=1, retain=True)
        pub.expect(PUBACK)

    def test_queued_message_expires(self):
        """A message queued for an offline persistent session with expiry 1 s is not delivered
        on reconnect 2 s later; one with expiry 30 s is, with at most 28 s remaining."""
        base = unique("exp-q")
        cid = unique("exp-q-sub")
        session = {"session_expiry_interval": 60}
        sub = RawClient(self.port)
        sub.connect(cid, clean_start=True, properties=session)
        sub.subscribe([(f"{base}/#", 1)])
        sub.disconnect()
        # Offline before the publishes: one that reached the session while it was still
        # attached would have started onward delivery, and expiry no longer applies to it.
        sub.wait_closed()
        sub.close()
        pub = self.raw_client()
        pub.publish(f"{base}/short", b"short", qos=1, properties={"message_expiry_interval": 1})
        pub.expect(PUBACK)
        pub.publish(f"{base}/long", b"long", qos=1, properties={"message_expiry_interval": 30})
        pub.expect(PUBACK)
        time.sleep(2.2)
        sub = self.raw_client(client_id=cid, clean_start=False, properties=session)
        self.assertTrue(self.connack.session_present)
        got = sub.collect(1.5, quiet=1.0)
        self.assertEqual([(m.topic, m.payload) for m in got], [(f"{base}/long", b"long")])
        self.assertLessEqual(got[0].properties.get("message_expiry_interval", 999), 28)
        sub.puback(got[0].packet_id)
        # end the session
        sub.disconnect()
        self.raw_client(client_id=cid, clean_start=True).disconnect()


class InvalidPublish(PublishTest):

    def test_wildcard_in_topic_name_disconnects(self):
        """[MQTT-3.3.2-2] a Topic Name must not contain wildcards: PUBLISH to "a/+" or "a/#"
        ends the connection and is not delivered. 5.0 may send DISCONNECT first: the spec
        allows 0x81 (malformed), 0x82 (protocol error) or 0x90 (topic name invalid);
        Mosquitto sends 0x82."""
        base = unique("wild")
        sub = self.subscriber(f"{base}/#", 1)
        for version, bad in itertools.product((4, 5), ("+", "#")):
            with self.subTest(version=version, topic=bad):
                pub = self.raw_client(version)
                pub.publish(f"{base}/{bad}", b"wild", qos=0)
                reason = pub.wait_closed(5)
                allowed = (None, RC_MALFORMED, RC_PROTOCOL_ERROR, RC_TOPIC_NAME_INVALID)
                self.assertIn(reason, allowed if version == 5 else (None,))
        self.assertEqual(sub.collect(1.0), [])
        check_broker_serves(self.port)

    def test_qos3_is_malformed(self):
        """[MQTT-3.3.1-4] QoS bits 11 are malformed: the connection is closed (5.0 optionally
        after DISCONNECT 0x81) and nothing is delivered."""
        topic = unique("qos3")
        sub = self.subscriber(topic, 2)
        for version in (4, 5):
            with self.subTest(version=version):
                pub = self.raw_client(version)
                props = b"\x00" if version == 5 else b""
                pub.send(fixed_header(PUBLISH, 0x06, encode_string(topic) + b"\x00\x01"
                                      + props + b"qos3"))
                reason = pub.wait_closed(5)
                self.assertIn(reason, (None, RC_MALFORMED) if version == 5 else (None,))
        self.assertEqual(sub.collect(1.0), [])
        check_broker_serves(self.port)


if __name__ == "__main__":
    unittest.main()
