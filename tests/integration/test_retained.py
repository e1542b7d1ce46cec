"""Retained messages: set, replace, delete, delivery on subscribe (retain flag 1, wildcards,
QoS = min(message, subscription)), live delivery with retain 0, 5.0 message expiry, and a
1000-topic retained set delivered completely to a '#' subscriber.
"""

import time
import unittest

from harness import Broker, BrokerTestCase, MqttClient, unique


class RetainedTests:
    """Shared by the 3.1.1 and 5.0 classes below (VERSION is 4 or 5)."""

    VERSION = None

    def setUp(self):
        super().setUp()
        self.p = unique("ret")

    def retained_on_subscribe(self, topic_filter, qos=1, wait=0.7):
        """(topic, payload, retain, qos) of what a fresh subscriber gets right after SUBSCRIBE."""
        c = self.paho_client()
        self.assertEqual(c.subscribe(topic_filter, qos), [qos])
        return [(m.topic, m.payload, m.retain, m.qos) for m in c.drain(wait)]

    def test_delivered_on_subscribe_with_retain_flag(self):
        """A retained message reaches a later subscriber, with retain=1 and the same payload."""
        t = f"{self.p}/a"
        self.paho_client().publish(t, b"hello", qos=1, retain=True)
        self.assertEqual(self.retained_on_subscribe(t), [(t, b"hello", 1, 1)])

    def test_replace(self):
        """A new retained message on a topic replaces the old one; only the newest is sent."""
        t = f"{self.p}/a"
        pub = self.paho_client()
        pub.publish(t, b"one", qos=1, retain=True)
        pub.publish(t, b"two", qos=1, retain=True)
        self.assertEqual(self.retained_on_subscribe(t), [(t, b"two", 1, 1)])

    def test_non_retained_publish_keeps_retained(self):
        """A normal (retain=0) publish does not replace or delete the retained message."""
        t = f"{self.p}/a"
        pub = self.paho_client()
        pub.publish(t, b"kept", qos=1, retain=True)
        pub.publish(t, b"transient", qos=1)
        pub.publish(t, b"", qos=1)
        self.assertEqual(self.retained_on_subscribe(t), [(t, b"kept", 1, 1)])

    def test_delete_with_empty_payload(self):
        """An empty retained publish deletes the retained message; it is still delivered live
        to existing subscribers (with an empty payload)."""
        t = f"{self.p}/a"
        pub, live = self.paho_client(), self.paho_client()
        pub.publish(t, b"soon gone", qos=1, retain=True)
        live.subscribe(t, 1)
        self.assertEqual(live.get().payload, b"soon gone")
        pub.publish(t, b"", qos=1, retain=True)
        m = live.get()
        self.assertEqual((m.payload, m.retain), (b"", 0))
        self.assertEqual(self.retained_on_subscribe(t), [])

    def test_wildcard_subscription_gets_every_matching_retained(self):
        """'p/#' and 'p/+/x' subscribers get exactly the retained messages their filter matches."""
        p = self.p
        pub = self.paho_client()
        for t in (f"{p}/a/x", f"{p}/b/x", f"{p}/b/y", f"{p}/c", p, f"{p}x/a/x"):
            pub.publish(t, t.encode(), qos=1, retain=True)
        got = self.retained_on_subscribe(f"{p}/#")
        self.assertEqual(sorted(got), sorted((t, t.encode(), 1, 1) for t in
                                             (f"{p}/a/x", f"{p}/b/x", f"{p}/b/y", f"{p}/c", p)))
        got = self.retained_on_subscribe(f"{p}/+/x")
        self.assertEqual(sorted(got), sorted((t, t.encode(), 1, 1) for t in
                                             (f"{p}/a/x", f"{p}/b/x")))

    def test_live_delivery_has_retain_0_and_is_not_repeated(self):
        """An existing subscriber gets a retained publish once, with retain=0 (no Retain As
        Published); a new subscriber gets it with retain=1."""
        t = f"{self.p}/a"
        pub, live = self.paho_client(), self.paho_client()
        live.subscribe(t, 1)
        pub.publish(t, b"v", qos=1, retain=True)
        got = [live.get()] + live.drain(0.7)
        self.assertEqual([(m.payload, m.retain) for m in got], [(b"v", 0)])
        self.assertEqual(self.retained_on_subscribe(t), [(t, b"v", 1, 1)])
        live.expect_nothing(0.3)

    def test_retained_qos_is_minimum_of_message_and_subscription(self):
        """QoS of a retained delivery = min(QoS of the retained message, granted QoS)."""
        p = self.p
        pub = self.paho_client()
        pub.publish(f"{p}/two", b"2", qos=2, retain=True)
        pub.publish(f"{p}/one", b"1", qos=1, retain=True)
        pub.publish(f"{p}/zero", b"0", qos=0, retain=True)
        pub.publish(f"{p}/sync", b"s", qos=1)  # the QoS 0 publish is processed before this
        for sub_qos in (0, 1, 2):
            got = sorted((topic.rsplit("/", 1)[1], qos) for topic, _, _, qos in
                         self.retained_on_subscribe(f"{p}/#", sub_qos))
            self.assertEqual(got, sorted([("two", min(2, sub_qos)), ("one", min(1, sub_qos)),
                                          ("zero", 0)]), f"subscription QoS {sub_qos}")


class Retained311(RetainedTests, BrokerTestCase):
    VERSION = 4


class Retained5(RetainedTests, BrokerTestCase):
    VERSION = 5

    def test_message_expiry_of_retained(self):
        """A retained message with Message Expiry Interval 1 s is gone 2 s later; one with 60 s
        is delivered with its remaining expiry lowered by the time it waited."""
        p = self.p
        pub = self.paho_client()
        short = pub.properties("PUBLISH")
        short.MessageExpiryInterval = 1
        long = pub.properties("PUBLISH")
        long.MessageExpiryInterval = 60
        pub.publish(f"{p}/short", b"expires", qos=1, retain=True, properties=short)
        pub.publish(f"{p}/long", b"stays", qos=1, retain=True, properties=long)
        time.sleep(2.2)
        c = self.paho_client()
        c.subscribe(f"{p}/#", 1)
        got = c.drain(0.7)
        self.assertEqual([(m.topic, m.payload, m.retain) for m in got], [(f"{p}/long", b"stays", 1)])
        remaining = got[0].properties.MessageExpiryInterval
        self.assertTrue(1 <= remaining <= 59, f"remaining expiry {remaining}")


class ThousandRetained(unittest.TestCase):
    """A broker of its own, so a '#' subscriber sees only this test's retained messages."""

    def test_1000_retained_to_hash_subscriber(self):
        """1000 retained topics all reach a '#' subscriber, each exactly once, retain=1."""
        with Broker() as b:
            pub = MqttClient(b.port, version=5)
            sub = MqttClient(b.port, version=5)
            try:
                pub.connect()
                infos = [pub.client.publish(f"many/{i // 100}/{i}", str(i).encode(), 1, True)
                         for i in range(1000)]
                for info in infos:
                    info.wait_for_publish(10)
                    self.assertTrue(info.is_published())
                sub.connect()
                self.assertEqual(sub.subscribe("#", 1), [1])
                got = sub.collect(1000, timeout=20)
                extra = sub.drain(1.0)
                self.assertEqual(extra, [], "more than 1000 retained messages")
                self.assertEqual(sorted((m.topic, m.payload) for m in got),
                                 sorted((f"many/{i // 100}/{i}", str(i).encode())
                                        for i in range(1000)))
                self.assertTrue(all(m.retain for m in got))
            finally:
                pub.close()
                sub.close()


if __name__ == "__main__":
    unittest.main()
