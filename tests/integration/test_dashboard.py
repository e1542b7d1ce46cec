"""The web dashboard at / on the HTTP port, in headless Chromium (tests/integration/node/
dashboard_check.mjs, playwright-core with Debian's chromium) while a load runs:

- the page loads with no console error, page error or failed request, shows live numbers that
  move under load, and a kick from its client search disconnects that client (5.0 DISCONNECT
  0x98, administrative action);
- with API tokens, a read-only token sees the same numbers and no kick button.
The files are served from the binary; a screenshot of the page under load is saved when
$STARLING_DASHBOARD_SCREENSHOT names a path (docs/img/dashboard.png was made so).
"""

import os
import threading
import unittest
import urllib.request

from harness import Broker, MqttClient, against_mosquitto, unique
from test_bridge import Mosquitto, bridge_config
from ws_clients import _run_node_script

TOKENS = """
[http.tokens.viewer]
token = "viewer-token-0123456789"
scopes = ["read"]

[http.tokens.operator]
token = "operator-token-0123456789"
scopes = ["admin"]
"""


class Load:
    """A publisher sending QoS 0 messages to a subscriber until stopped (at most 2 minutes)."""

    def __init__(self, port):
        self.topic = unique("dash") + "/load"
        self.sub = MqttClient(port)
        self.sub.connect()
        self.sub.subscribe(self.topic, 0)
        self.pub = MqttClient(port)
        self.pub.connect()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for i in range(120 * 100):
            if self.stopping.wait(0.01):
                return
            self.pub.client.publish(self.topic, str(i).encode(), qos=0)

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.pub.close()
        self.sub.close()


@unittest.skipIf(against_mosquitto(), "Starling's own dashboard")
class DashboardTest(unittest.TestCase):

    def start(self, config_text=None):
        broker = Broker(config_text=config_text, http=True)
        broker.start()
        self.addCleanup(broker.stop)
        load = Load(broker.port)
        self.addCleanup(load.stop)
        return broker

    def test_page_is_served_from_the_binary_with_a_strict_policy(self):
        broker = Broker(http=True)
        broker.start()
        self.addCleanup(broker.stop)
        with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/", timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
            self.assertIn("default-src 'self'", r.headers["Content-Security-Policy"])
            self.assertIn(b"/dashboard.js", r.read())
        for path, kind in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
            with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}{path}",
                                        timeout=10) as r:
                self.assertTrue(r.headers["Content-Type"].startswith(kind))

    def test_live_numbers_and_kick_in_a_browser(self):
        broker = self.start()
        target = MqttClient(broker.port, client_id=unique("kick-me"))
        self.addCleanup(target.close)
        target.connect()
        args = [f"http://127.0.0.1:{broker.http_port}/", "--kick", target.client_id]
        screenshot = os.environ.get("STARLING_DASHBOARD_SCREENSHOT")
        if screenshot:
            args += ["--screenshot", screenshot, "--settle", "20", "--timeout", "60"]
        result = _run_node_script("dashboard_check.mjs", args, 90)
        self.assertTrue(result.get("ok"), result)
        self.assertEqual(result["errors"], [])
        self.assertNotEqual(result["messagesIn"][0], result["messagesIn"][1])
        self.assertEqual(result["access"], "admin")
        self.assertGreaterEqual(result["latencyRows"], 4)
        self.assertEqual(result["kickButtons"], 1)
        self.assertTrue(result["kicked"])
        # The client was told why: DISCONNECT 0x98 (administrative action).
        self.assertTrue(target.disconnected.wait(10), "the kicked client was not disconnected")
        self.assertEqual(target.disconnect_reason, 0x98)

    def test_a_read_only_token_sees_numbers_and_cannot_kick(self):
        broker = self.start(TOKENS)
        target = MqttClient(broker.port, client_id=unique("stay"))
        self.addCleanup(target.close)
        target.connect()
        result = _run_node_script("dashboard_check.mjs", [
            f"http://127.0.0.1:{broker.http_port}/", "--token", "viewer-token-0123456789",
            "--expect-read-only", target.client_id], 60)
        self.assertTrue(result.get("ok"), result)
        self.assertEqual(result["errors"], [])
        self.assertEqual(result["access"], "read-only")
        self.assertEqual(result["kickButtons"], 0)
        self.assertFalse(target.disconnected.is_set())

    def test_kafka_and_bridge_sections_show_when_configured(self):
        remote = Mosquitto().start()
        self.addCleanup(remote.stop)
        config = ("[kafka]\nmock = true\n\n" +
                  bridge_config("peer", remote.port, [("dash/#", "out", 1, "", "")]))
        broker = self.start(config)
        result = _run_node_script("dashboard_check.mjs", [
            f"http://127.0.0.1:{broker.http_port}/", "--sections", "kafka,bridges"], 60)
        self.assertTrue(result.get("ok"), result)
        self.assertEqual(result["errors"], [])
        self.assertIsNone(result["sections"]["cluster"])  # not in a cluster: not shown
        self.assertTrue(any(row.startswith("peer") for row in result["sections"]["bridges"]),
                        result["sections"])

    def test_cluster_section_lists_the_nodes(self):
        from cluster_harness import StarlingCluster
        cluster = StarlingCluster(nodes=2, kafka_brokers=1)
        cluster.start()
        self.addCleanup(cluster.stop)
        load = Load(cluster.node(1).port)
        self.addCleanup(load.stop)
        result = _run_node_script("dashboard_check.mjs", [
            f"http://127.0.0.1:{cluster.node(1).http_port}/", "--sections", "kafka,cluster"], 60)
        self.assertTrue(result.get("ok"), result)
        self.assertEqual(result["errors"], [])
        rows = result["sections"]["cluster"]
        self.assertEqual(len(rows), 2, rows)
        self.assertTrue(any("(this node)" in row for row in rows), rows)


if __name__ == "__main__":
    unittest.main()
