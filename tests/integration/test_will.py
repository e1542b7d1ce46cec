"""Will messages: sent when the connection is lost (socket closed without DISCONNECT, keep-alive
expiry), with the will's QoS, retain flag and 5.0 properties; not sent after a normal
DISCONNECT; sent after 5.0 DISCONNECT 0x04; the 5.0 Will Delay Interval.
"""

import unittest

from harness import BrokerTestCase, MqttClient, unique, user_properties
from mqtt_raw import RawClient


class WillTests:
    """Shared by the 3.1.1 and 5.0 classes below (VERSION is 4 or 5)."""

    VERSION = None

    def setUp(self):
        super().setUp()
        self.p = unique("will")

    def watcher(self, topic, qos=2):
        w = self.paho_client()
        self.assertEqual(w.subscribe(topic, qos), [qos])
        return w

    def test_will_on_lost_connection(self):
        """Closing the socket without DISCONNECT publishes the will (payload, QoS, retain 0)."""
        t = f"{self.p}/w"
        w = self.watcher(t)
        c = self.paho_client(connect=False).will_set(t, b"gone", qos=1)
        c.connect()
        c.drop()
        m = w.get()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), (t, b"gone", 1, 0))
        w.expect_nothing(0.5)

    def test_will_qos_2_and_subscription_qos_limits(self):
        """A QoS 2 will arrives at QoS 2 on a QoS 2 subscription and at QoS 0 on a QoS 0 one."""
        t = f"{self.p}/w"
        w2, w0 = self.watcher(t, 2), self.watcher(t, 0)
        c = self.paho_client(connect=False).will_set(t, b"q2", qos=2)
        c.connect()
        c.drop()
        m2, m0 = w2.get(), w0.get()
        self.assertEqual((m2.payload, m2.qos), (b"q2", 2))
        self.assertEqual((m0.payload, m0.qos), (b"q2", 0))

    def test_no_will_after_normal_disconnect(self):
        """DISCONNECT (5.0: reason 0x00) discards the will."""
        t = f"{self.p}/w"
        w = self.watcher(t)
        c = self.paho_client(connect=False).will_set(t, b"never", qos=1)
        c.connect()
        c.disconnect(reason=0 if self.VERSION == 5 else None)
        w.expect_nothing(1.0)

    def test_retained_will_reaches_later_subscriber(self):
        """A will with retain=1 is stored as the retained message of its topic."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        c = self.paho_client(connect=False).will_set(t, b"last words", qos=1, retain=True)
        c.connect()
        c.drop()
        m = w.get()
        self.assertEqual((m.payload, m.retain), (b"last words", 0))  # live: retain 0
        later = self.paho_client()
        later.subscribe(t, 1)
        m = later.get()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), (t, b"last words", 1, 1))
        self.paho_client().publish(t, b"", qos=1, retain=True)

    def test_will_on_keep_alive_timeout(self):
        """A client that stops talking (keep-alive 1 s, socket left open) loses its connection
        after 1.5 x keep-alive and its will is published."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        r = RawClient(self.broker.port, self.VERSION)
        self.addCleanup(r.close)
        ack = r.connect(unique("silent"), keepalive=1,
                        will={"topic": t, "payload": b"timed out", "qos": 1})
        self.assertEqual(ack.reason_code, 0)
        m = w.get(timeout=6.0)
        self.assertEqual((m.payload, m.qos), (b"timed out", 1))
        self.assertTrue(r.expect_closed(timeout=3.0))


class Will311(WillTests, BrokerTestCase):
    VERSION = 4


class Will5(WillTests, BrokerTestCase):
    VERSION = 5

    def will_properties(self, delay=None):
        props = MqttClient.properties("WILLMESSAGE")
        if delay is not None:
            props.WillDelayInterval = delay
        return props

    def test_will_properties_pass_through(self):
        """Content type, user properties (in order), payload format, response topic and
        correlation data of the will reach the subscriber unchanged."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        props = self.will_properties()
        props.ContentType = "text/plain"
        props.PayloadFormatIndicator = 1
        props.ResponseTopic = f"{self.p}/reply"
        props.CorrelationData = b"\x00\x01corr"
        props.UserProperty = [("k1", "v1"), ("k2", "v2"), ("k1", "again")]
        c = self.paho_client(connect=False).will_set(t, b"props", qos=1, properties=props)
        c.connect()
        c.drop()
        m = w.get()
        self.assertEqual(m.payload, b"props")
        self.assertEqual(m.properties.ContentType, "text/plain")
        self.assertEqual(m.properties.PayloadFormatIndicator, 1)
        self.assertEqual(m.properties.ResponseTopic, f"{self.p}/reply")
        self.assertEqual(m.properties.CorrelationData, b"\x00\x01corr")
        self.assertEqual(user_properties(m), [("k1", "v1"), ("k2", "v2"), ("k1", "again")])

    def test_will_sent_after_disconnect_with_will_message(self):
        """DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        c = self.paho_client(connect=False).will_set(t, b"asked for it", qos=1)
        c.connect()
        c.disconnect(reason=0x04)
        m = w.get()
        self.assertEqual((m.payload, m.qos), (b"asked for it", 1))

    def test_will_delay_cancelled_by_reconnect(self):
        """Will Delay 2 s, Session Expiry 10 s: reconnecting to the session within the delay
        means the will is never sent."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        cid = unique("delayed")
        c = self.paho_client(connect=False, client_id=cid, session_expiry=10)
        c.will_set(t, b"should not", qos=1, properties=self.will_properties(delay=2))
        c.connect()
        c.drop()
        back = self.paho_client(connect=False, client_id=cid, clean=False, session_expiry=10)
        self.assertEqual(back.connect(), 1)  # the session (and its pending will) is resumed
        w.expect_nothing(3.5)                # well past the 2 s delay
        back.disconnect()  # no will on this connection; clean up the session state
        w.expect_nothing(0.3)

    def test_will_delay_sends_after_delay(self):
        """Will Delay 2 s, Session Expiry 10 s, no reconnect: the will does not come at once
        (not within ~1 s) but does come (within ~6 s)."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        c = self.paho_client(connect=False, session_expiry=10)
        c.will_set(t, b"delayed", qos=1, properties=self.will_properties(delay=2))
        c.connect()
        c.drop()
        w.expect_nothing(1.0)
        m = w.get(timeout=5.0)
        self.assertEqual(m.payload, b"delayed")

    def test_will_sent_when_session_ends_before_delay(self):
        """Will Delay 30 s but Session Expiry 1 s: the will is sent when the session ends,
        whichever comes first (MQTT 5.0 3.1.3.2.2)."""
        t = f"{self.p}/w"
        w = self.watcher(t, 1)
        c = self.paho_client(connect=False, session_expiry=1)
        c.will_set(t, b"session over", qos=1, properties=self.will_properties(delay=30))
        c.connect()
        c.drop()
        m = w.get(timeout=8.0)  # long before the 30 s delay
        self.assertEqual(m.payload, b"session over")


if __name__ == "__main__":
    unittest.main()
