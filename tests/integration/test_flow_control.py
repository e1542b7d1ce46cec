"""Flow control: the client's Receive Maximum bounds what the broker sends unacknowledged
(outbound), the broker's Receive Maximum bounds what a client may send (inbound), and a large
QoS 1 fan-in loses nothing and keeps each publisher's order."""

import threading
import time
import unittest

from harness import Broker, BrokerTestCase, MqttClient, against_mosquitto, unique
from mqtt_raw import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, ConnectionClosed, RawClient,
                      check_broker_serves, encode_ack, encode_publish)

RC_QUOTA_EXCEEDED = 0x97
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93


class OutboundReceiveMaximum(BrokerTestCase):
    """A 5.0 subscriber announcing Receive Maximum N."""

    def publish_qos1(self, topic, payloads):
        pub = self.raw_client()
        for p in payloads:
            pub.publish(topic, p, qos=1)
            pub.expect(PUBACK)

    def test_initial_window_is_receive_maximum(self):
        """With Receive Maximum 2 and no acks, exactly the first 2 of 6 QoS 1 messages are sent
        [MQTT-3.3.4-9]; nothing else follows within 1 s."""
        topic = unique("win")
        sub = self.raw_client(properties={"receive_maximum": 2})
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
        sub = self.raw_client(properties={"receive_maximum": 2})
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
        sub = self.raw_client(properties={"receive_maximum": 2})
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
        sub = self.raw_client(properties={"receive_maximum": 1})
        sub.subscribe([(topic, 2)])
        pub = self.raw_client()
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

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 answers with PUBREC 0x97")
    def test_dup_flag_does_not_bypass_receive_maximum(self):
        """With 5 unreleased QoS 2 PUBLISHes, a retransmission (DUP) of one of them is answered
        PUBREC again, but a DUP PUBLISH with a packet id the broker does not hold is a new
        message: DISCONNECT 0x93."""
        with Broker(config_text=self.STARLING) as b, RawClient(b.port) as pub:
            pub.connect(unique("dup"))
            topic = unique("dup")
            for i in range(1, 6):
                pub.publish(topic, b"x", qos=2, packet_id=i)
                self.assertEqual(pub.expect(PUBREC).packet_id, i)
            pub.publish(topic, b"x", qos=2, packet_id=3, dup=True)
            self.assertEqual(pub.expect(PUBREC).packet_id, 3)
            pub.publish(topic, b"x", qos=2, packet_id=6, dup=True)
            self.assertEqual(pub.wait_closed(5), RC_RECEIVE_MAXIMUM_EXCEEDED)

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 answers with PUBREC 0x97")
    def test_disconnect_reaches_a_client_that_keeps_sending(self):
        """A client with 5 QoS 2 PUBLISHes unreleased (Receive Maximum 5) and 256 KiB of
        messages on their way to it (it reads slowly: a 4 KiB receive buffer) writes, in one
        go, a 6th PUBLISH, its PUBRELs for the first five and more PUBLISHes, and a moment
        later its PUBRELs again. The broker stops at the 6th and queues DISCONNECT 0x93 behind
        those messages. Had it closed its socket, the kernel would answer the client's later
        bytes with a reset and throw away what it has not sent yet: the end of the messages and
        the DISCONNECT. The broker half-closes and reads and drops the input instead, for a
        while (a lingering close), so the client reads every message and then the DISCONNECT."""
        with Broker(config_text=self.STARLING) as b, \
                RawClient(b.port, rcvbuf=4096) as pub, RawClient(b.port) as feeder:
            pub.connect(unique("linger"))
            topic = unique("linger")
            pub.subscribe([(f"{topic}/feed", 0)])
            for i in range(1, 6):
                pub.publish(topic, b"x", qos=2, packet_id=i)
                self.assertEqual(pub.expect(PUBREC).packet_id, i)
            feeder.connect(unique("feeder"))
            for _ in range(64):
                feeder.publish(f"{topic}/feed", b"f" * 4096, qos=0)
            feeder.ping()
            self.assertEqual(feeder.recv_packet(5).name, "PINGRESP")  # all 64 were routed
            # The first of them reaching the client shows its connection took them all from
            # the session (in one go) before the burst below is read: a burst read first would
            # rightly close with nothing after the DISCONNECT (a race under load, seen in CI).
            first = pub.recv_packet(10)
            self.assertEqual(first.type, PUBLISH)
            burst = encode_publish(topic, b"x" * 100, 2, False, 6, False, None, 5)
            burst += b"".join(encode_ack(PUBREL, i, 0, None, 5) for i in range(1, 6))
            burst += b"".join(encode_publish(topic, b"y" * 100, 2, False, i, False, None, 5)
                              for i in range(7, 40))
            pub.send_bytes(burst)
            # The broker has read all of that, answered and closed before the client, still
            # not reading, sends more: PUBRELs again. A closed socket answers them with a reset.
            time.sleep(0.5)
            pub.send_bytes(b"".join(encode_ack(PUBREL, i, 0, None, 5) for i in range(1, 6)))
            time.sleep(0.2)
            try:
                reason = pub.wait_closed(10)
            except (ConnectionClosed, OSError) as e:
                self.fail(f"the connection broke before DISCONNECT was read: {e!r}")
            feed = [first] + [p for p in pub.skipped if p.type == PUBLISH]
            self.assertEqual((reason, len(feed)), (RC_RECEIVE_MAXIMUM_EXCEEDED, 64))

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

    def broker(self):
        return Broker()

    def subscriber(self, port):
        return MqttClient(port, version=5)

    def test_qos1_fan_in_no_loss_in_order(self):
        """20 paho publishers x 200 QoS 1 messages (pipelined) to one QoS 1 subscriber: all
        4000 arrive, each exactly once, and each publisher's messages in the order sent."""
        with self.broker() as b:
            base = unique("fanin")
            sub = self.subscriber(b.port)
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



@unittest.skipIf(against_mosquitto(), "Starling's store: queue_resident_messages")
class FanInPersistentSpilling(FanIn):
    """The same into a persistent subscriber whose queue goes past the resident limit: the
    rest waits in the store and is read back in order, while new messages keep arriving. (A
    message that arrived while the queue in memory was empty but older ones waited in the store
    was sent at once; refill then read its record back as one of the waiting ones: a copy of it
    and the loss of another.)"""

    def broker(self):
        return Broker(config_text="[limits]\nqueue_resident_messages = 10\n")

    def subscriber(self, port):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = 10
        return MqttClient(port, version=5, session_expiry=3600, connect_properties=props)


if __name__ == "__main__":
    unittest.main()
