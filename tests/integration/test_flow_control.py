"""Flow control: the client's Receive Maximum bounds what the broker sends unacknowledged
(outbound), the broker's Receive Maximum bounds what a client may send (inbound), and a large
QoS 1 fan-in loses nothing and keeps each publisher's order."""

import threading
import unittest

from harness import Broker, MqttClient, against_mosquitto, unique
from mqtt_raw import PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, RawClient, check_broker_serves

RC_QUOTA_EXCEEDED = 0x97
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93


class OutboundReceiveMaximum(unittest.TestCase):
    """A 5.0 subscriber announcing Receive Maximum N."""

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker().start()
        cls.port = cls.broker.port

    @classmethod
    def tearDownClass(cls):
        cls.broker.cleanup()

    def raw(self, **connect_args):
        c = RawClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.connect(unique("fc"), **connect_args).reason_code, 0)
        return c

    def publish_qos1(self, topic, payloads):
        pub = self.raw()
        for p in payloads:
            pub.publish(topic, p, qos=1)
            pub.expect(PUBACK)

    def test_initial_window_is_receive_maximum(self):
        """With Receive Maximum 2 and no acks, exactly the first 2 of 6 QoS 1 messages are sent
        [MQTT-3.3.4-9]; nothing else follows within 1 s."""
        topic = unique("win")
        sub = self.raw(properties={"receive_maximum": 2})
        sub.subscribe([(topic, 1)])
        self.publish_qos1(topic, [str(i).encode() for i in range(6)])
        got = sub.collect(1.5, quiet=1.0)
        self.assertEqual([(m.type, m.payload) for m in got], [(PUBLISH, b"0"), (PUBLISH, b"1")])

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 sends two new QoS 1 messages for "
                     "each PUBACK once the window is full, exceeding the client's Receive Maximum")
    def test_window_never_exceeded_while_acking(self):
        """Acking one message at a time, the unacked count never exceeds 2, each ack releases
        exactly one more, and all 8 arrive in order."""
        topic = unique("slide")
        sub = self.raw(properties={"receive_maximum": 2})
        sub.subscribe([(topic, 1)])
        payloads = [str(i).encode() for i in range(8)]
        self.publish_qos1(topic, payloads)
        inflight, received = [], []
        for _ in range(len(payloads) + 1):
            got = sub.collect(1.0, quiet=0.7)
            self.assertTrue(all(m.type == PUBLISH and m.qos == 1 for m in got), got)
            inflight += [m.packet_id for m in got]
            received += [m.payload for m in got]
            self.assertLessEqual(len(inflight), 2, f"unacked {inflight}")
            if not inflight:
                break
            sub.puback(inflight.pop(0))
        self.assertEqual(received, payloads)

    def test_nothing_lost_when_acking(self):
        """Acking each message as it arrives, all 20 QoS 1 messages queued behind a window of
        2 are delivered, in order, once each."""
        topic = unique("drain")
        sub = self.raw(properties={"receive_maximum": 2})
        sub.subscribe([(topic, 1)])
        payloads = [str(i).encode() for i in range(20)]
        self.publish_qos1(topic, payloads)
        received = []
        while True:
            m = sub.recv_packet(2.0)
            if m is None:
                break
            self.assertEqual(m.type, PUBLISH)
            received.append(m.payload)
            sub.puback(m.packet_id)
        self.assertEqual(received, payloads)

    def test_qos2_counts_until_pubcomp(self):
        """With Receive Maximum 1, a QoS 2 delivery occupies the window until PUBCOMP: nothing
        new after PUBREC (only the PUBREL), the next message right after PUBCOMP."""
        topic = unique("q2win")
        sub = self.raw(properties={"receive_maximum": 1})
        sub.subscribe([(topic, 2)])
        pub = self.raw()
        for i in range(3):
            pid = pub.publish(topic, str(i).encode(), qos=2)
            pub.expect(PUBREC)
            pub.pubrel(pid)
            pub.expect(PUBCOMP)
        first = sub.collect(1.5, quiet=1.0)
        self.assertEqual([(m.type, m.payload) for m in first], [(PUBLISH, b"0")])
        sub.pubrec(first[0].packet_id)
        after_rec = sub.collect(1.5, quiet=1.0)
        self.assertEqual([(m.type, m.packet_id) for m in after_rec],
                         [(PUBREL, first[0].packet_id)])
        sub.pubcomp(first[0].packet_id)
        after_comp = sub.collect(1.5, quiet=1.0)
        self.assertEqual([(m.type, m.payload) for m in after_comp], [(PUBLISH, b"1")])


class InboundReceiveMaximum(unittest.TestCase):
    """The broker's own Receive Maximum (5) against a client that sends too much."""

    STARLING = "[mqtt]\nreceive_maximum = 5\n"
    MOSQUITTO = "max_inflight_messages 5\n"

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 answers the PUBLISH beyond its "
                     "Receive Maximum with PUBREC 0x97 instead of DISCONNECT 0x93 (spec 3.3.4)")
    def test_exceeding_receive_maximum_disconnects_93(self):
        """5 unreleased QoS 2 PUBLISHes are accepted (PUBREC 0); the 6th gets DISCONNECT 0x93
        (Receive Maximum exceeded) and is not delivered."""
        with Broker(config_text=self.STARLING, mosquitto_config=self.MOSQUITTO) as b, \
                RawClient(b.port) as sub, RawClient(b.port) as pub:
            topic = unique("inrm")
            sub.connect(unique("inrm-sub"))
            sub.subscribe([(topic, 2)])
            ack = pub.connect(unique("inrm-pub"))
            self.assertEqual(ack.properties.get("receive_maximum"), 5)
            for i in range(1, 6):
                pub.publish(topic, f"ok{i}".encode(), qos=2, packet_id=i)
                rec = pub.expect(PUBREC)
                self.assertEqual((rec.packet_id, rec.reason_code), (i, 0))
            pub.publish(topic, b"too-many", qos=2, packet_id=6)
            self.assertEqual(pub.wait_closed(5), RC_RECEIVE_MAXIMUM_EXCEEDED)
            delivered = []
            for m in sub.collect(1.5, quiet=1.0):
                if m.type == PUBLISH:
                    delivered.append(m.payload)
                    sub.pubrec(m.packet_id)
            self.assertNotIn(b"too-many", delivered)
            check_broker_serves(b.port)

    def test_completed_flows_free_the_quota(self):
        """With 5 unreleased QoS 2 PUBLISHes, completing one (PUBREL -> PUBCOMP) frees a slot:
        the next PUBLISH gets PUBREC 0 and the connection stays up."""
        with Broker(config_text=self.STARLING, mosquitto_config=self.MOSQUITTO) as b, \
                RawClient(b.port) as pub:
            self.assertEqual(pub.connect(unique("quota")).properties.get("receive_maximum"), 5)
            topic = unique("quota")
            accepted = (0x00, 0x10)  # success; 0x10 = no matching subscribers (there are none)
            for i in range(1, 6):
                pub.publish(topic, b"x", qos=2, packet_id=i)
                self.assertIn(pub.expect(PUBREC).reason_code, accepted)
            pub.pubrel(1)
            self.assertEqual(pub.expect(PUBCOMP).packet_id, 1)
            pub.publish(topic, b"x", qos=2, packet_id=6)
            rec = pub.expect(PUBREC)
            self.assertEqual(rec.packet_id, 6)
            self.assertIn(rec.reason_code, accepted)
            for i in range(2, 7):
                pub.pubrel(i)
                self.assertEqual(pub.expect(PUBCOMP).packet_id, i)
            pub.ping()
            self.assertEqual(pub.recv_packet(2).name, "PINGRESP")


class FanIn(unittest.TestCase):

    PUBLISHERS = 20
    MESSAGES = 200

    def test_qos1_fan_in_no_loss_in_order(self):
        """20 paho publishers x 200 QoS 1 messages (pipelined) to one QoS 1 subscriber: all
        4000 arrive, each exactly once, and each publisher's messages in the order sent."""
        with Broker() as b:
            base = unique("fanin")
            sub = MqttClient(b.port, version=5)
            self.addCleanup(sub.close)
            sub.connect()
            self.assertEqual(sub.subscribe(f"{base}/#", 1), [1])
            pubs = [MqttClient(b.port, version=5 if i % 2 else 4) for i in range(self.PUBLISHERS)]
            for p in pubs:
                self.addCleanup(p.close)
                p.connect()
            errors = []

            def run(i, client):
                try:
                    infos = [client.client.publish(f"{base}/p{i}", f"{i}:{n}".encode(), qos=1)
                             for n in range(self.MESSAGES)]
                    for info in infos:
                        info.wait_for_publish(60)
                        if not info.is_published():
                            errors.append(f"publisher {i}: message {info.mid} not acked")
                except Exception as e:  # reported below, not lost in the thread
                    errors.append(f"publisher {i}: {e!r}")

            threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(pubs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(90)
            self.assertEqual(errors, [])
            total = self.PUBLISHERS * self.MESSAGES
            msgs = sub.collect(total, timeout=60)
            self.assertEqual(sub.drain(1.0), [])  # nothing beyond the 4000
            per_publisher = {i: [] for i in range(self.PUBLISHERS)}
            for m in msgs:
                i, n = m.payload.decode().split(":")
                self.assertEqual(m.topic, f"{base}/p{i}")
                per_publisher[int(i)].append(int(n))
            for i, seq in per_publisher.items():
                self.assertEqual(seq, list(range(self.MESSAGES)), f"publisher {i}")


if __name__ == "__main__":
    unittest.main()
