"""$SYS topics, published every second here ([sys] interval = 1; Mosquitto: sys_interval 1):
the expected names appear, counters are decimal numbers, clients/connected follows the number of
connected clients, a '#' subscriber never sees $SYS, and (Starling) every counter equals, to the
byte, what the test's own clients sent and received (SysValues).

Mosquitto 2.0.11 publishes the same names except: version is "mosquitto version 2.0.11",
uptime is "<n> seconds", and the drop counter is $SYS/broker/publish/messages/dropped.
"""

import re
import time
import unittest

from harness import Broker, BrokerTestCase, MqttClient, against_mosquitto, unique
from mqtt_raw import PINGRESP, PUBACK, PUBLISH, RawClient

COMMON_COUNTERS = [
    "$SYS/broker/clients/connected",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/retained messages/count",
]
VERSION = "$SYS/broker/version"
UPTIME = "$SYS/broker/uptime"
DROPPED = "$SYS/broker/messages/dropped"
# Starling's drop counter per reason (starling_messages_dropped_total's labels), beside the sum.
DROP_REASONS = ("queue_full", "expired", "too_large", "offline_qos0", "session_ended",
                "no_shared_member")
DROPPED_BY_REASON = [f"{DROPPED}/{r}" for r in DROP_REASONS]


SYS_EVERY_SECOND = "[sys]\ninterval = 1\n"
SYS_EVERY_SECOND_MOSQUITTO = "sys_interval 1\n"


def sys_broker(**kw):
    return Broker(config_text=SYS_EVERY_SECOND, mosquitto_config=SYS_EVERY_SECOND_MOSQUITTO, **kw)


class SysWatcher:
    """A '$SYS/#' subscriber keeping the latest payload of each $SYS topic."""

    def __init__(self, port):
        self.client = MqttClient(port, version=5, client_id=unique("sys"))
        self.client.connect()
        self.latest = {}
        self.client.subscribe("$SYS/#", 0)

    def wait_for(self, predicate, timeout=5.0):
        """Reads $SYS messages until predicate(latest) holds; returns the latest dict. On
        timeout returns it as it is (the caller's assertion then shows the values)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.latest):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                m = self.client.get(timeout=left)
            except AssertionError:
                break
            self.latest[m.topic] = m.payload.decode(errors="replace")
        return self.latest

    def wait_for_value(self, topic, wanted, timeout=5.0):
        """The last value of topic seen, after waiting until it equals `wanted` (or timeout)."""
        self.wait_for(lambda d: d.get(topic) == wanted, timeout)
        return self.latest.get(topic)

    def close(self):
        self.client.close()


class SysTopics(BrokerTestCase):
    broker_config = SYS_EVERY_SECOND
    mosquitto_config = SYS_EVERY_SECOND_MOSQUITTO

    def setUp(self):
        super().setUp()
        self.watcher = SysWatcher(self.broker.port)
        self.addCleanup(self.watcher.close)

    def test_common_counters_are_decimal(self):
        """clients/connected, messages and bytes received/sent, subscriptions/count and
        'retained messages/count' arrive within 5 s, each a decimal number."""
        latest = self.watcher.wait_for(lambda d: all(t in d for t in COMMON_COUNTERS))
        for topic in COMMON_COUNTERS:
            self.assertIn(topic, latest)
            self.assertRegex(latest[topic], r"^[0-9]+$", topic)

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 names its drop counter "
                     "$SYS/broker/publish/messages/dropped")
    def test_messages_dropped_is_decimal(self):
        """$SYS/broker/messages/dropped arrives within 5 s as a decimal number."""
        latest = self.watcher.wait_for(lambda d: DROPPED in d)
        self.assertRegex(latest.get(DROPPED, ""), r"^[0-9]+$")

    @unittest.skipIf(against_mosquitto(), "Mosquitto's version is 'mosquitto version 2.0.11'")
    def test_version_string(self):
        """$SYS/broker/version is "starling x.y.z"."""
        latest = self.watcher.wait_for(lambda d: VERSION in d)
        self.assertRegex(latest.get(VERSION, ""), r"^starling [0-9]+\.[0-9]+\.[0-9]+$")

    @unittest.skipIf(against_mosquitto(), "Mosquitto's uptime is '<n> seconds'")
    def test_uptime_is_decimal_seconds_and_grows(self):
        """$SYS/broker/uptime is a decimal number of seconds that increases over time."""
        seen = []
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline and (len(seen) < 2 or seen[-1] == seen[0]):
            m = self.watcher.client.get(timeout=max(0.01, deadline - time.monotonic()))
            if m.topic == UPTIME:
                seen.append(m.payload.decode(errors="replace"))
        self.assertTrue(seen and all(re.fullmatch(r"[0-9]+", v) for v in seen), seen)
        self.assertGreater(int(seen[-1]), int(seen[0]), seen)

    def test_messages_received_counts_publishes(self):
        """messages/received grows by exactly the number of PUBLISHes we send (Mosquitto: by at
        least that many)."""
        topic = "$SYS/broker/messages/received"
        before = int(self.watcher.wait_for(lambda d: topic in d)[topic])
        pub = self.paho_client()
        for i in range(20):
            pub.publish(f"{unique('sys')}/x", b"m", qos=1)
        self.watcher.wait_for(lambda d: int(d[topic]) >= before + 20)
        if against_mosquitto():  # its messages/received counts packets of every type
            self.assertGreaterEqual(int(self.watcher.latest[topic]), before + 20)
        else:  # nothing else publishes on this broker: exactly 20 more
            self.assertEqual(int(self.watcher.latest[topic]), before + 20)

    def test_hash_subscriber_gets_no_sys(self):
        """A '#' subscriber receives nothing from $SYS while $SYS is being published."""
        wild = self.paho_client()
        wild.subscribe("#", 0)
        self.watcher.client.drain(0.1)
        # At least two $SYS rounds reach the watcher while '#' is subscribed.
        first = self.watcher.client.get(timeout=5.0)
        self.assertTrue(first.topic.startswith("$SYS/"))
        got = [m.topic for m in wild.drain(2.0)]
        self.assertEqual([t for t in got if t.startswith("$")], [])


# Every topic of one Starling $SYS round, in no particular order.
STARLING_ROUND = ([VERSION, UPTIME, "$SYS/broker/clients/total", DROPPED] + DROPPED_BY_REASON +
                  COMMON_COUNTERS)
SYS_RETAINED = len(STARLING_ROUND)  # each round's messages are retained, one per topic


class CountingClient(RawClient):
    """A RawClient that counts the bytes it writes (`sent`) and the bytes of every whole packet
    it reads (`received`), and the PUBLISH packets it sends (`publishes`)."""

    def __init__(self, port):
        super().__init__(port)
        self.sent = self.received = self.publishes = 0

    def send_bytes(self, data):
        self.sent += len(data)
        if data and data[0] >> 4 == PUBLISH:
            self.publishes += 1
        super().send_bytes(data)

    def _frame(self):
        before = len(self.buf)
        frame = super()._frame()
        self.received += before - len(self.buf)
        return frame

    def sync(self):
        """PINGREQ, then reads until PINGRESP (what came before it is returned): the broker has
        read everything this client sent and written everything due to it before the PINGRESP."""
        self.ping()
        before = []
        while True:
            p = self.recv_packet(10.0)
            if p is None:
                raise AssertionError("no PINGRESP within 10 s")
            if p.type == PINGRESP:
                return before
            before.append(p)


class Round:
    """One $SYS round as the watcher read it: values by topic, the watcher's received byte
    count before its first message, and its own size on the wire."""

    def __init__(self, values, start, size):
        self.values, self.start, self.size = values, start, size

    def __getitem__(self, name):
        return int(self.values[f"$SYS/broker/{name}"])


def read_round(watcher, timeout=10.0):
    """The next whole round of live $SYS messages (retained copies sent on SUBSCRIBE skipped).
    With one worker thread a round is computed and written in one go, so its messages are
    consecutive on the watcher's connection."""
    values, start, deadline = {}, None, time.monotonic() + timeout
    while len(values) < len(STARLING_ROUND):
        before = watcher.received
        p = watcher.recv_packet(max(0.01, deadline - time.monotonic()))
        if p is None:
            raise AssertionError(f"no whole $SYS round within {timeout}s: {values}")
        if p.type != PUBLISH or p.retain:
            continue
        if p.topic in values:
            raise AssertionError(f"{p.topic} twice in one round: {values}")
        if start is None:
            start = before
        values[p.topic] = p.payload.decode()
    return Round(values, start, watcher.received - start)


@unittest.skipIf(against_mosquitto(), "Starling's $SYS counters, by value (Mosquitto counts "
                 "and names some of them differently)")
class SysValues(unittest.TestCase):
    """A broker of its own with one worker thread (so $SYS housekeeping and every connection
    share one loop: a round's values are taken between two socket writes) and only this
    test's clients, all CountingClients: every counter can be predicted exactly."""

    maxDiff = None

    def test_counters_equal_the_traffic_made(self):
        """A watcher subscribes to $SYS/broker/#. Then: a persistent session subscribes to O
        and goes; a subscriber makes 3 subscriptions (M, X/+ and O: two sessions on one filter
        are two subscriptions); a publisher sends 5 QoS 1 messages of 100 bytes to M, 4
        retained messages, and 3 QoS 0 messages to O (delivered to the subscriber, dropped for
        the offline session). Once every client has synchronised (PINGREQ/PINGRESP), the next
        two rounds report exactly: bytes/received = every byte the clients wrote; bytes/sent =
        every byte they read, the watcher's own $SYS messages before that round included (so
        from one round to the next it grows by the size of the round); messages/received =
        12; messages/sent grows by one round; messages/dropped = 3, all of them
        messages/dropped/offline_qos0; subscriptions/count = 1 + 3 + 1; retained
        messages/count = 4 + the $SYS topics of a round;
        clients/connected = 3, clients/total = 4. Before the traffic, a baseline round
        reported only the watcher."""
        with sys_broker(threads=1) as b:
            clients = []

            def client(**connect):
                c = CountingClient(b.port)
                clients.append(c)
                self.addCleanup(c.close)
                self.assertEqual(c.connect(unique("v"), **connect).reason_code, 0)
                return c

            def total(attr, but=None):
                return sum(getattr(c, attr) for c in clients if c is not but)

            watcher = client()
            self.assertEqual(watcher.subscribe([("$SYS/broker/#", 0)]).reason_codes, [0])
            watcher.sync()
            base = read_round(watcher)
            want = {"bytes/received": watcher.sent, "bytes/sent": base.start,
                    "subscriptions/count": 1, "clients/connected": 1, "clients/total": 1,
                    "messages/received": 0, "messages/dropped": 0}
            self.assertEqual({k: base[k] for k in want}, want, "baseline round")

            prefix = unique("vals")
            gone = client(properties={"session_expiry_interval": 300})
            self.assertEqual(gone.subscribe([(f"{prefix}/offline", 1)]).reason_codes, [1])
            gone.disconnect()
            self.assertIsNone(gone.wait_closed(10))  # the broker has taken the session offline

            sub = client()
            filters = [f"{prefix}/m", f"{prefix}/x/+", f"{prefix}/offline"]
            self.assertEqual(sub.subscribe([(f, 1) for f in filters]).reason_codes, [1, 1, 1])

            pub = client()
            for i in range(5):
                pub.publish(f"{prefix}/m", bytes([65 + i]) * 100, qos=1)
                self.assertEqual(pub.expect(PUBACK).reason_code, 0)
            for i in range(4):
                pub.publish(f"{prefix}/retained/{i}", b"kept", qos=1, retain=True)
                pub.expect(PUBACK)
            for i in range(3):
                pub.publish(f"{prefix}/offline", b"dropped", qos=0)
            pub.sync()
            got = [sub.expect(PUBLISH) for _ in range(8)]
            self.assertEqual([m.payload for m in got],
                             [bytes([65 + i]) * 100 for i in range(5)] + [b"dropped"] * 3)
            for m in got[:5]:
                sub.puback(m.packet_id)
            self.assertEqual(sub.sync(), [])
            self.assertEqual(total("publishes"), 5 + 4 + 3)

            watcher.sync()  # the rounds read below began after all of the above
            first, second = read_round(watcher), read_round(watcher)
            for name, r in (("first", first), ("second", second)):
                want = {"bytes/received": total("sent"),
                        "bytes/sent": total("received", but=watcher) + r.start,
                        "messages/received": 5 + 4 + 3,
                        "messages/dropped": 3,
                        **{f"messages/dropped/{r}": 3 if r == "offline_qos0" else 0
                           for r in DROP_REASONS},
                        "subscriptions/count": 1 + 3 + 1,
                        "retained messages/count": 4 + SYS_RETAINED,
                        "clients/connected": 3,
                        "clients/total": 4}
                self.assertEqual({k: r[k] for k in want}, want, f"{name} round after the traffic")
            # The deltas between two quiet rounds: only the watcher's $SYS messages moved.
            self.assertEqual({k: second[k] - first[k]
                              for k in ("bytes/sent", "bytes/received", "messages/sent")},
                             {"bytes/sent": first.size, "bytes/received": 0,
                              "messages/sent": len(STARLING_ROUND)}, "second - first round")
            # And since the baseline: exactly what the other clients wrote, plus the watcher's
            # second PINGREQ.
            self.assertEqual(first["bytes/received"] - base["bytes/received"],
                             total("sent", but=watcher) + 2)


class ClientsConnected(unittest.TestCase):
    """A broker of its own so no other test's clients are counted."""

    def test_clients_connected_follows_connections(self):
        """clients/connected is 1 with only the $SYS watcher, 4 with 3 more clients (3.1.1 and
        5.0), and back to 1 after they disconnect."""
        topic = "$SYS/broker/clients/connected"
        with sys_broker() as b:
            watcher = SysWatcher(b.port)
            extra = []
            try:
                self.assertEqual(watcher.wait_for_value(topic, "1"), "1")
                for version in (5, 4, 5):
                    c = MqttClient(b.port, version=version)
                    c.connect()
                    extra.append(c)
                self.assertEqual(watcher.wait_for_value(topic, "4"), "4")
                for c in extra:
                    c.disconnect()
                self.assertEqual(watcher.wait_for_value(topic, "1"), "1")
            finally:
                for c in extra:
                    c.close()
                watcher.close()


if __name__ == "__main__":
    unittest.main()
