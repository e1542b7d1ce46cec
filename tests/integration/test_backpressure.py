"""Backpressure: a publisher whose QoS 1 messages cannot be placed is slowed, not dropped.

Starling-specific (its queue limits come from its config); skipped against Mosquitto.
"""

import unittest

from harness import Broker, against_mosquitto
from mqtt_raw import PUBACK, PUBLISH, RawClient

CONFIG = """
[mqtt]
max_inflight = 5

[limits]
max_queued_messages = 20
"""

TOTAL = 100


@unittest.skipIf(against_mosquitto(), "Starling queue limits and publisher pausing")
class PublisherPausedBySlowSubscriber(unittest.TestCase):
    def test_publisher_paused_then_everything_delivered(self):
        """A subscriber that does not ack fills its queue; the publisher's socket stops being
        read (its PUBACKs stop) instead of messages being dropped; once the subscriber acks,
        all 100 messages arrive in order and all 100 PUBACKs reach the publisher."""
        with Broker(config_text=CONFIG) as b:
            sub = RawClient(b.port, version=5)
            sub.connect("bp-sub", properties={"receive_maximum": 5})
            sub.subscribe([("bp/t", 1)])
            pub = RawClient(b.port, version=5)
            pub.connect("bp-pub")

            for i in range(TOTAL):
                pub.publish("bp/t", f"m{i}".encode(), qos=1, packet_id=i + 1)

            # While nobody acks: some PUBACKs, but not all (the publisher is paused).
            early_acks = [p for p in pub.collect(timeout=1.5) if p.type == PUBACK]
            self.assertGreater(len(early_acks), 0)
            self.assertLess(len(early_acks), TOTAL)

            # Now drain: ack everything, expect every message once and in order.
            received = []
            while len(received) < TOTAL:
                p = sub.recv_packet(timeout=10)
                self.assertIsNotNone(p, f"stalled after {len(received)} messages")
                if p.type != PUBLISH:
                    continue
                if not p.dup or p.payload not in received:
                    received.append(p.payload)
                sub.puback(p.packet_id)
            self.assertEqual(received, [f"m{i}".encode() for i in range(TOTAL)])

            acks = {p.packet_id for p in early_acks}
            while len(acks) < TOTAL:
                p = pub.recv_packet(timeout=10)
                self.assertIsNotNone(p, f"publisher got {len(acks)} PUBACKs")
                if p.type == PUBACK:
                    acks.add(p.packet_id)
            self.assertEqual(acks, set(range(1, TOTAL + 1)))
            sub.close()
            pub.close()


if __name__ == "__main__":
    unittest.main()
