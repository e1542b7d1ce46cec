"""Shared subscriptions ($share/<group>/<filter>, MQTT 5.0 4.8.2; Starling also allows them for
3.1.1 clients): each message goes to exactly one member of a group, members share the load,
groups and normal subscribers each get every message, unacknowledged messages of a member that
leaves (or, persistent, goes offline) go to another member except QoS 2 ones in flight, and no
retained messages are sent on a shared subscribe.
"""

import time
import unittest

from harness import BrokerTestCase, against_mosquitto, unique
from mqtt_raw import RawClient, PUBLISH


class SharedTests(BrokerTestCase):

    def setUp(self):
        super().setUp()
        self.p = unique("shared")

    def member(self, group, topic, version=5, qos=1):
        c = self.paho_client(version)
        self.assertEqual(c.subscribe(f"$share/{group}/{topic}", qos), [qos])
        return c

    def publish_numbered(self, topic, n, qos=1):
        pub = self.paho_client()
        for i in range(n):
            pub.publish(topic, str(i).encode(), qos=qos)
        return [str(i).encode() for i in range(n)]

    def gather(self, clients, total, timeout=10.0):
        """Payloads per client once `total` have arrived across them (plus 0.5 s for extras)."""
        got = [[] for _ in clients]
        deadline = time.monotonic() + timeout
        while sum(map(len, got)) < total and time.monotonic() < deadline:
            for i, c in enumerate(clients):
                got[i] += [m.payload for m in c.drain(0.05)]
        for i, c in enumerate(clients):
            got[i] += [m.payload for m in c.drain(0.5)]
        return got

    def test_group_members_share_messages_exactly_once(self):
        """100 messages to a group of two (a 5.0 and a 3.1.1 member): every message arrives at
        exactly one member, and both get a fair share (at least 30 each)."""
        t = f"{self.p}/t"
        a, b = self.member("g", t, version=5), self.member("g", t, version=4)
        sent = self.publish_numbered(t, 100)
        got_a, got_b = self.gather([a, b], 100)
        self.assertEqual(sorted(got_a + got_b), sorted(sent))  # all, and none twice
        self.assertGreaterEqual(len(got_a), 30, (len(got_a), len(got_b)))
        self.assertGreaterEqual(len(got_b), 30, (len(got_a), len(got_b)))

    def test_each_group_gets_every_message(self):
        """Two groups on the same filter each receive all messages once."""
        t = f"{self.p}/t"
        g1 = [self.member("g1", t), self.member("g1", t)]
        g2 = [self.member("g2", t, version=4)]
        sent = self.publish_numbered(t, 40)
        got = self.gather(g1 + g2, 80)
        self.assertEqual(sorted(got[0] + got[1]), sorted(sent))
        self.assertEqual(sorted(got[2]), sorted(sent))

    def test_normal_subscriber_alongside_gets_every_message(self):
        """A normal subscription on the same filter gets all messages, in order, besides the
        group's members sharing them."""
        t = f"{self.p}/t"
        members = [self.member("g", t), self.member("g", t)]
        plain = self.paho_client()
        plain.subscribe(t, 1)
        sent = self.publish_numbered(t, 40)
        got = self.gather(members + [plain], 80)
        self.assertEqual(sorted(got[0] + got[1]), sorted(sent))
        self.assertEqual(got[2], sent)

    def test_wildcard_shared_filter(self):
        """The filter part of a shared subscription may use wildcards."""
        p = self.p
        a, b = self.member("g", f"{p}/+/x"), self.member("g", f"{p}/+/x")
        pub = self.paho_client()
        for t in (f"{p}/1/x", f"{p}/2/x", f"{p}/3/y"):
            pub.publish(t, t.encode(), qos=1)
        got = self.gather([a, b], 2)
        self.assertEqual(sorted(got[0] + got[1]), sorted([f"{p}/1/x".encode(), f"{p}/2/x".encode()]))

    @unittest.skipIf(against_mosquitto(),
                     "Mosquitto 2.0.11 does not re-send a departed member's unacknowledged "
                     "messages to the other members (spec: SHOULD, MQTT 5.0 4.8.2)")
    def test_unacked_messages_of_departed_member_go_to_other_member(self):
        """A member (clean session) that leaves with unacknowledged QoS 1 messages: those
        messages are delivered to the remaining member, so the group still gets all of them."""
        t = f"{self.p}/t"
        raw = RawClient(self.broker.port, 5)
        self.addCleanup(raw.close)
        self.assertEqual(raw.connect(unique("leaver"), clean_start=True).reason_code, 0)
        self.assertEqual(raw.subscribe([(f"$share/g/{t}", 1)]).reason_codes, [1])
        stayer = self.member("g", t)
        sent = self.publish_numbered(t, 10)
        held = [p.payload for p in raw.collect(1.0, quiet=0.5) if p.type == PUBLISH]
        self.assertGreaterEqual(len(held), 1, "the leaving member got no messages to hold")
        raw.close()  # leaves without PUBACK (and, clean session, its session ends)
        got = [m.payload for m in stayer.drain(2.0)]
        self.assertEqual(sorted(set(got)), sorted(sent))
        self.assertTrue(set(held) <= set(got))

    def persistent_raw_member(self, cid, topic, qos):
        raw = RawClient(self.broker.port, 5)
        self.addCleanup(raw.close)
        ack = raw.connect(cid, clean_start=True, properties={"session_expiry_interval": 300})
        self.assertEqual(ack.reason_code, 0)
        self.assertEqual(raw.subscribe([(f"$share/g/{topic}", qos)]).reason_codes, [qos])
        return raw

    @unittest.skipIf(against_mosquitto(),
                     "Mosquitto 2.0.11 keeps an offline member's messages for it")
    def test_persistent_member_going_offline_hands_over_its_qos1_messages(self):
        """A persistent member (session expiry 300 s) loses its connection holding QoS 1
        messages it has not acknowledged: they go to the member still online at once, not
        when its session ends, and it is not sent them again when it returns."""
        t = f"{self.p}/t"
        cid = unique("offline-member")
        raw = self.persistent_raw_member(cid, t, 1)
        stayer = self.member("g", t)
        sent = self.publish_numbered(t, 10)
        held = [p.payload for p in raw.collect(1.0, quiet=0.5) if p.type == PUBLISH]
        self.assertGreaterEqual(len(held), 1, "the leaving member got no messages to hold")
        raw.close()  # no PUBACK, no DISCONNECT; the session stays for 300 s
        got = [m.payload for m in stayer.drain(2.0)]
        self.assertEqual(sorted(set(got)), sorted(sent))
        back = RawClient(self.broker.port, 5)
        self.addCleanup(back.close)
        ack = back.connect(cid, clean_start=False, properties={"session_expiry_interval": 0})
        self.assertTrue(ack.session_present)
        self.assertEqual([p.payload for p in back.collect(1.0, quiet=0.5)
                          if p.type == PUBLISH], [])

    @unittest.skipIf(against_mosquitto(), "Starling's shared hand-over")
    def test_qos2_in_flight_stays_with_its_member(self):
        """A QoS 2 message sent to a member that goes offline before PUBREC is never sent to
        another member ([MQTT-4.8.2-5]); the member gets it again (DUP) when it returns."""
        t = f"{self.p}/t"
        cid = unique("q2-member")
        raw = self.persistent_raw_member(cid, t, 2)
        stayer = self.member("g", t, qos=2)
        sent = self.publish_numbered(t, 6, qos=2)
        held = [p.payload for p in raw.collect(1.0, quiet=0.5) if p.type == PUBLISH]
        self.assertGreaterEqual(len(held), 1, "the leaving member got no messages to hold")
        raw.close()  # no PUBREC
        got = [m.payload for m in stayer.drain(2.0)]
        self.assertFalse(set(held) & set(got), "a QoS 2 message in flight went to another member")
        self.assertEqual(sorted(set(got) | set(held)), sorted(sent))
        back = RawClient(self.broker.port, 5)
        self.addCleanup(back.close)
        ack = back.connect(cid, clean_start=False, properties={"session_expiry_interval": 0})
        self.assertTrue(ack.session_present)
        again = [p for p in back.collect(1.0, quiet=0.5) if p.type == PUBLISH]
        self.assertEqual(sorted(p.payload for p in again), sorted(held))
        self.assertTrue(all(p.dup for p in again))

    @unittest.skipIf(against_mosquitto(),
                     "Mosquitto 2.0.11 sends retained messages on a shared subscribe")
    def test_no_retained_messages_on_shared_subscribe(self):
        """Subscribing to a shared subscription does not deliver retained messages (MQTT 5.0
        4.8.2), for 5.0 and 3.1.1 members; a normal subscription on the same topic does."""
        t = f"{self.p}/r"
        pub = self.paho_client()
        pub.publish(t, b"retained", qos=1, retain=True)
        members = [self.member("g5", t, version=5), self.member("g4", t, version=4)]
        members[0].expect_nothing(1.0)
        members[1].expect_nothing(0.1)
        plain = self.paho_client()
        plain.subscribe(t, 1)
        self.assertEqual(plain.get().payload, b"retained")
        pub.publish(t, b"", qos=1, retain=True)


if __name__ == "__main__":
    unittest.main()
