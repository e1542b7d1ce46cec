"""$SYS topics, published every second here ([sys] interval = 1; Mosquitto: sys_interval 1):
the expected names appear, counters are decimal numbers, clients/connected follows the number of
connected clients, and a '#' subscriber never sees $SYS.

Mosquitto 2.0.11 publishes the same names except: version is "mosquitto version 2.0.11",
uptime is "<n> seconds", and the drop counter is $SYS/broker/publish/messages/dropped.
"""

import re
import time
import unittest

from harness import MqttClient, TunedBroker, against_mosquitto, unique

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


def sys_broker():
    return TunedBroker("[sys]\ninterval = 1\n", "sys_interval 1\n")


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


class SysTopics(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.broker = sys_broker().start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.cleanup()

    def setUp(self):
        self.watcher = SysWatcher(self.broker.port)

    def tearDown(self):
        self.watcher.close()

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
        """messages/received grows by at least the number of PUBLISHes we send."""
        topic = "$SYS/broker/messages/received"
        before = int(self.watcher.wait_for(lambda d: topic in d)[topic])
        pub = MqttClient(self.broker.port)
        try:
            pub.connect()
            for i in range(20):
                pub.publish(f"{unique('sys')}/x", b"m", qos=1)
            self.watcher.wait_for(lambda d: int(d[topic]) >= before + 20)
            self.assertGreaterEqual(int(self.watcher.latest[topic]), before + 20)
        finally:
            pub.close()

    def test_hash_subscriber_gets_no_sys(self):
        """A '#' subscriber receives nothing from $SYS while $SYS is being published."""
        wild = MqttClient(self.broker.port)
        try:
            wild.connect()
            wild.subscribe("#", 0)
            self.watcher.client.drain(0.1)
            # At least two $SYS rounds reach the watcher while '#' is subscribed.
            first = self.watcher.client.get(timeout=5.0)
            self.assertTrue(first.topic.startswith("$SYS/"))
            got = [m.topic for m in wild.drain(2.0)]
            self.assertEqual([t for t in got if t.startswith("$")], [])
        finally:
            wild.close()


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
