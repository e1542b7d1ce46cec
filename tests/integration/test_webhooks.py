"""[[webhooks]]: broker events POSTed as JSON batches to the harness's HookService: the events
of a client's life in order with their fields, message.delivered filtered by topic, batches no
larger than batch_max, retries after the service was down (nothing lost, order kept, seq
without gaps), a full queue dropping and counting, and the metrics.
"""

import base64
import unittest

from harness import BrokerTestCase, metric, unique, wait_until
from hook_service import HookService
from mqtt_raw import PUBACK, PUBLISH, RawClient


class WebhookTest(BrokerTestCase):
    broker_scope = None

    def setUp(self):
        super().setUp()
        self.service = HookService()
        self.addCleanup(self.service.close)

    def start_broker(self, events, extra=""):
        listed = ", ".join(f'"{e}"' for e in events)
        self.broker = self.new_broker(http=True, config_text=f"""
[[webhooks]]
name = "events"
url = "{self.service.url('/hook')}"
events = [{listed}]
batch_delay_ms = 20
retry_min_ms = 50
retry_max_ms = 400
{extra}
""")
        self.port, self.http_port = self.broker.port, self.broker.http_port

    def wait_events(self, n, what="events", timeout=20):
        return wait_until(lambda: len(self.service.events()) >= n and self.service.events(),
                          timeout, f"{n} {what}")

    def client(self, client_id, **kwargs):
        c = RawClient(self.port, 5)
        self.addCleanup(c.close)
        self.assertEqual(c.connect(client_id, **kwargs).reason_code, 0)
        return c

    def test_a_client_life_in_order(self):
        self.start_broker(["client.connected", "client.disconnected", "session.created",
                           "session.terminated", "session.subscribed", "session.unsubscribed",
                           "message.delivered"])
        c = self.client("life-1", username="ann")
        self.assertEqual(c.subscribe([("life/#", 1)]).reason_codes, [1])
        c.publish("life/x", b"hello", qos=1, packet_id=1)
        got = {p.type: p for p in (c.recv_packet(), c.recv_packet())}  # PUBACK, PUBLISH
        self.assertEqual(set(got), {PUBACK, PUBLISH})
        c.puback(got[PUBLISH].packet_id)
        c.unsubscribe("life/#")
        c.disconnect()
        events = self.wait_events(7)
        names = [e["event"] for e in events]
        self.assertEqual(names, ["session.created", "client.connected", "session.subscribed",
                                 "message.delivered", "session.unsubscribed",
                                 "client.disconnected", "session.terminated"])
        self.assertEqual([e["seq"] for e in events], list(range(1, 8)))
        by = {e["event"]: e for e in events}
        self.assertEqual(by["client.connected"]["clientid"], "life-1")
        self.assertEqual(by["client.connected"]["username"], "ann")
        self.assertEqual(by["client.connected"]["proto_ver"], 5)
        self.assertEqual(by["session.subscribed"]["topic"], "life/#")
        self.assertEqual(by["session.subscribed"]["qos"], 1)
        delivered = by["message.delivered"]
        self.assertEqual((delivered["topic"], delivered["qos"], delivered["from_clientid"]),
                         ("life/x", 1, "life-1"))
        self.assertEqual(base64.b64decode(delivered["payload"]), b"hello")
        self.assertEqual(by["client.disconnected"]["reason"], "normal")
        self.assertEqual(by["client.disconnected"]["reason_code"], 0)
        for e in events:
            self.assertIsInstance(e["timestamp"], int)
            self.assertTrue(e["node"])

    def test_message_events_follow_the_topic_filters(self):
        self.start_broker(["message.delivered"], extra='topics = ["watched/#"]')
        sub = self.client("f-sub")
        sub.subscribe([("#", 0)])
        pub = self.client("f-pub")
        for topic in ["other/1", "watched/1", "other/2", "watched/2"]:
            pub.publish(topic, topic.encode())
        for _ in range(4):
            sub.expect(PUBLISH)
        pub.publish("watched/end", b"end")
        sub.expect(PUBLISH)
        events = self.wait_events(3)
        self.assertEqual([e["topic"] for e in events], ["watched/1", "watched/2", "watched/end"])

    def test_retries_after_the_service_was_down(self):
        self.start_broker(["client.connected", "client.disconnected"], extra="batch_max = 3")
        self.service.hook_status = 503
        for i in range(10):
            c = self.client(f"r-{i}")
            c.disconnect()
            c.wait_closed()
        wait_until(lambda: self.service.refused >= 2, 20, "refused POSTs")
        self.assertGreaterEqual(metric(self.http_port, "starling_webhook_posts_total",
                                       webhook="events", result="failed"), 2)
        self.service.hook_status = 200
        events = self.wait_events(20)
        self.assertEqual(len(events), 20)
        self.assertEqual([e["seq"] for e in events], list(range(1, 21)))
        self.assertEqual([e["clientid"] for e in events if e["event"] == "client.connected"],
                         [f"r-{i}" for i in range(10)])
        self.assertTrue(all(len(b) <= 3 for b in self.service.batches))
        self.assertEqual(metric(self.http_port, "starling_webhook_events_total",
                                webhook="events", result="delivered"), 20)
        self.assertEqual(metric(self.http_port, "starling_webhook_events_total",
                                webhook="events", result="dropped"), 0)

    def test_service_stopped_then_back(self):
        self.start_broker(["client.connected"], extra="timeout_ms = 500")
        self.service.stop()
        for i in range(5):
            self.client(f"s-{i}")
        wait_until(lambda: metric(self.http_port, "starling_webhook_posts_total",
                                  webhook="events", result="failed") >= 1, 20, "a failed POST")
        self.service.start()
        events = self.wait_events(5)
        self.assertEqual([e["clientid"] for e in events], [f"s-{i}" for i in range(5)])

    def test_full_queue_drops_and_counts(self):
        self.start_broker(["client.connected"], extra="queue_max = 4\nbatch_max = 100")
        self.service.hook_status = 500
        for i in range(10):
            self.client(f"q-{i}")
        wait_until(lambda: metric(self.http_port, "starling_webhook_events_total",
                                  webhook="events", result="dropped") == 6, 20, "6 drops")
        self.assertEqual(metric(self.http_port, "starling_webhook_queued", webhook="events"), 4)
        self.service.hook_status = 200
        events = self.wait_events(4)
        self.assertEqual([e["clientid"] for e in events], [f"q-{i}" for i in range(4)])


if __name__ == "__main__":
    unittest.main()
