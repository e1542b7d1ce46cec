"""Persistent sessions: 3.1.1 clean session 0 and 5.0 clean start 0 with a session expiry.

Subscriptions survive a reconnect (session present 1); QoS 1/2 messages published while the
client is offline are delivered in order on reconnect; unacknowledged QoS 1/2 deliveries are
resent with DUP=1 and their original packet ids; a session with a short expiry is gone after it;
clean start discards the session; the offline queue is bounded by max_queued_messages.
"""

import time
import unittest

from harness import Broker, BrokerTestCase, against_cluster, against_mosquitto, unique
from mqtt_raw import PUBLISH, PUBREL

SESSION_EXPIRY = 300  # 5.0 persistent sessions in these tests


def queue_limit_broker():
    """A broker whose per-session queue holds 5 messages and which publishes $SYS every second."""
    return Broker(config_text="[limits]\nmax_queued_messages = 5\n\n[sys]\ninterval = 1\n",
                  mosquitto_config="max_queued_messages 5\nsys_interval 1\n")


def receive_and_ack(raw, n, timeout=5.0):
    """Reads n PUBLISHes from a RawClient in wire order, completing each QoS 1/2 handshake
    (PUBACK, or PUBREC -> PUBREL -> PUBCOMP) as they come; returns once all are complete."""
    publishes, awaiting_pubrel = [], set()
    while len(publishes) < n or awaiting_pubrel:
        p = raw.recv_packet(timeout)
        if p is None:
            raise AssertionError(f"got {len(publishes)} of {n} PUBLISHes "
                                 f"({len(awaiting_pubrel)} PUBRELs missing) within {timeout}s")
        if p.type == PUBLISH:
            publishes.append(p)
            if p.qos == 1:
                raw.puback(p.packet_id)
            elif p.qos == 2:
                raw.pubrec(p.packet_id)
                awaiting_pubrel.add(p.packet_id)
        elif p.type == PUBREL and p.packet_id in awaiting_pubrel:
            awaiting_pubrel.discard(p.packet_id)
            raw.pubcomp(p.packet_id)
        else:
            raise AssertionError(f"unexpected {p!r}")
    return publishes


class SessionTests:
    """Shared by the 3.1.1 and 5.0 classes below (VERSION is 4 or 5)."""

    VERSION = None

    def setUp(self):
        super().setUp()
        self.p = unique("sess")

    def persistent(self, client_id, clean=False, port=None):
        """A connected client on a persistent session (5.0: session expiry 300 s)."""
        return self.paho_client(port=port, client_id=client_id, clean=clean,
                                session_expiry=SESSION_EXPIRY if self.VERSION == 5 else None)

    def publisher(self, port=None):
        return self.paho_client(port=port)

    def raw_persistent(self, client_id, clean=False):
        r = self.raw_client(connect=False)
        props = {"session_expiry_interval": SESSION_EXPIRY} if self.VERSION == 5 else None
        return r, r.connect(client_id, clean_start=clean, properties=props)

    def test_subscriptions_survive_reconnect(self):
        """After reconnecting with clean start 0 the session is present and its subscription
        still delivers, without subscribing again."""
        cid, t = unique("c"), f"{self.p}/t"
        c = self.persistent(cid)
        self.assertEqual(c.session_present, 0)
        self.assertEqual(c.subscribe(t, 1), [1])
        c.disconnect()
        c = self.persistent(cid)
        self.assertEqual(c.session_present, 1)
        self.publisher().publish(t, b"still subscribed", qos=1)
        m = c.get()
        self.assertEqual((m.topic, m.payload, m.qos), (t, b"still subscribed", 1))

    def test_offline_messages_delivered_in_order(self):
        """QoS 1 and 2 messages published while the client is away arrive on reconnect, all of
        them, in publish order (on the wire), at their QoS."""
        cid, t = unique("raw"), f"{self.p}/t"
        r, _ = self.raw_persistent(cid)
        self.assertEqual(r.subscribe([(t, 2)]).reason_codes, [2])
        r.disconnect()
        r.close()
        pub = self.publisher()
        sent = [(str(i).encode(), 1 + i % 2) for i in range(20)]
        for payload, qos in sent:
            pub.publish(t, payload, qos=qos)
        r, ack = self.raw_persistent(cid)
        self.assertTrue(ack.session_present)
        got = receive_and_ack(r, 20)
        self.assertEqual([(p.payload, p.qos, p.dup) for p in got],
                         [(payload, qos, False) for payload, qos in sent])
        self.assertEqual(r.collect(0.5), [])

    def test_unacked_qos1_resent_with_dup(self):
        """QoS 1 deliveries the client did not PUBACK are resent after reconnect with DUP=1,
        the same payloads and packet ids, in the original order (MQTT-4.4.0-1)."""
        cid, t = unique("raw"), f"{self.p}/t"
        r, ack = self.raw_persistent(cid)
        self.assertEqual(ack.reason_code, 0)
        self.assertEqual(r.subscribe([(t, 1)]).reason_codes, [1])
        pub = self.publisher()
        for i in range(3):
            pub.publish(t, f"m{i}".encode(), qos=1)
        first = [r.expect(PUBLISH) for _ in range(3)]
        self.assertEqual([(p.payload, p.dup) for p in first],
                         [(b"m0", False), (b"m1", False), (b"m2", False)])
        r.close()  # no PUBACK, no DISCONNECT
        r, ack = self.raw_persistent(cid)
        self.assertEqual((ack.reason_code, ack.session_present), (0, True))
        again = [r.expect(PUBLISH) for _ in range(3)]
        self.assertEqual([(p.topic, p.payload, p.qos, p.dup, p.packet_id) for p in again],
                         [(t, p.payload, 1, True, p.packet_id) for p in first])
        for p in again:
            r.puback(p.packet_id)
        self.assertEqual(r.collect(1.0), [])  # acknowledged now: nothing more

    def test_unacked_qos2_publish_and_pubrel_resent(self):
        """QoS 2: an un-PUBRECed PUBLISH is resent with DUP=1; for a PUBRECed one the PUBREL is
        resent instead, with the same packet id (MQTT-4.4.0-1)."""
        cid, t = unique("raw"), f"{self.p}/t"
        r, _ = self.raw_persistent(cid)
        r.subscribe([(t, 2)])
        pub = self.publisher()
        pub.publish(t, b"recd", qos=2)
        pub.publish(t, b"unacked", qos=2)
        recd, unacked = r.expect(PUBLISH), r.expect(PUBLISH)
        self.assertEqual((recd.payload, unacked.payload), (b"recd", b"unacked"))
        r.pubrec(recd.packet_id)
        self.assertEqual(r.expect(PUBREL).packet_id, recd.packet_id)
        r.close()  # no PUBCOMP for the first, no PUBREC for the second
        r, ack = self.raw_persistent(cid)
        self.assertTrue(ack.session_present)
        got = r.collect(1.5, quiet=0.7)
        pubrels = [p.packet_id for p in got if p.type == PUBREL]
        publishes = [(p.payload, p.dup, p.packet_id) for p in got if p.type == PUBLISH]
        self.assertEqual(pubrels, [recd.packet_id])
        self.assertEqual(publishes, [(b"unacked", True, unacked.packet_id)])

    def test_clean_start_discards_session(self):
        """Connecting with clean start / clean session 1 discards the stored session: session
        present 0, no queued messages, no old subscriptions."""
        cid, t = unique("c"), f"{self.p}/t"
        c = self.persistent(cid)
        c.subscribe(t, 1)
        c.disconnect()
        pub = self.publisher()
        pub.publish(t, b"queued", qos=1)
        c = self.persistent(cid, clean=True)
        self.assertEqual(c.session_present, 0)
        pub.publish(t, b"after", qos=1)
        c.expect_nothing(1.0)
        c.disconnect()
        # 3.1.1: a clean session ends with its connection. 5.0: clean start made a new, empty
        # session that lives on (expiry 300 s) -- present, but without the old subscription.
        c = self.persistent(cid)
        self.assertEqual(c.session_present, 1 if self.VERSION == 5 else 0)
        pub.publish(t, b"still nothing", qos=1)
        c.expect_nothing(1.0)

    def test_offline_queue_is_bounded(self):
        """With max_queued_messages = 5, 10 QoS 1 messages published while the client is away
        leave exactly 5 for it: the oldest five (the newest are dropped, as Mosquitto does)."""
        with queue_limit_broker() as b:
            cid, t = unique("c"), f"{self.p}/t"
            c = self.persistent(cid, port=b.port)
            c.subscribe(t, 1)
            c.disconnect()
            pub = self.publisher(port=b.port)
            for i in range(10):
                pub.publish(t, str(i).encode(), qos=1)
            b.settle()  # a cluster: the ten have reached the session's queue on its node
            c = self.persistent(cid, port=b.port)
            self.assertEqual(c.session_present, 1)
            got = [c.get()] + c.drain(1.0)
            self.assertEqual([m.payload for m in got], [b"0", b"1", b"2", b"3", b"4"])

            if against_cluster():
                # $SYS is each node's own: the drops are counted on the session's node.
                self.assertGreaterEqual(b.metric_sum("starling_messages_dropped_total"), 5)
                return
            # The drops are counted in $SYS (Mosquitto names its counter differently).
            dropped_topic = ("$SYS/broker/publish/messages/dropped" if against_mosquitto()
                             else "$SYS/broker/messages/dropped")
            watcher = self.paho_client(port=b.port)
            watcher.subscribe(dropped_topic, 0)
            values = []
            for _ in range(6):  # published every second: a few chances to see the count
                m = watcher.get(timeout=5.0)
                self.assertEqual(m.topic, dropped_topic)
                values.append(int(m.payload))
                if values[-1] >= 5:
                    break
            self.assertGreaterEqual(values[-1], 5, values)


class Session311(SessionTests, BrokerTestCase):
    VERSION = 4


class Session5(SessionTests, BrokerTestCase):
    VERSION = 5

    def test_session_expires(self):
        """Session Expiry 1 s: 3 s after the disconnect the session is gone (session present
        0), and messages queued for it are gone too."""
        cid, t = unique("c"), f"{self.p}/t"
        c = self.paho_client(client_id=cid, clean=False, session_expiry=1)
        c.subscribe(t, 1)
        c.disconnect()
        self.publisher().publish(t, b"queued before expiry", qos=1)
        time.sleep(3.0)
        back = self.persistent(cid)
        self.assertEqual(back.session_present, 0)
        back.expect_nothing(1.0)

    def test_session_expiry_zero_ends_session_at_disconnect(self):
        """Clean start 0 with no Session Expiry (0): the session ends with the connection."""
        cid, t = unique("c"), f"{self.p}/t"
        c = self.paho_client(client_id=cid, clean=False)
        c.subscribe(t, 1)
        c.disconnect()
        self.publisher().publish(t, b"nobody home", qos=1)
        back = self.persistent(cid)
        self.assertEqual(back.session_present, 0)
        back.expect_nothing(1.0)

    def test_disconnect_can_shorten_session_expiry(self):
        """DISCONNECT with Session Expiry Interval 0 ends a session that had 300 s."""
        cid, t = unique("c"), f"{self.p}/t"
        c = self.persistent(cid)
        c.subscribe(t, 1)
        props = c.properties("DISCONNECT")
        props.SessionExpiryInterval = 0
        c.disconnect(reason=0, properties=props)
        back = self.persistent(cid)
        self.assertEqual(back.session_present, 0)


if __name__ == "__main__":
    unittest.main()
