"""A Starling cluster on Kafka under faults: kill -9 and a power cut of the subscribers' node, a
power cut of the publisher's node with forwards still in its outbox, and a Kafka outage under
load. Nothing acknowledged is lost (cluster_harness.StarlingCluster, two nodes each). And a node
that is gone for good, retired by an operator."""

import http.client
import json
import os
import threading
import time
import unittest

from cluster_harness import StarlingCluster
from harness import HOST, MqttClient, unique, wait_until
from mqtt_raw import PUBACK, RawClient


class ClusterFaultTest(unittest.TestCase):
    """Faults: each test has a cluster of its own."""

    def setUp(self):
        self.cluster = StarlingCluster(nodes=2).start()
        self.addCleanup(self.cluster.stop)

    def client(self, node, **kwargs):
        c = MqttClient(self.cluster.node(node).port, **kwargs)
        self.addCleanup(c.close)
        c.connect()
        return c

    def publish_in_background(self, node, topic, n, qos=1):
        """Publishes 0..n-1 from one client on `node` in a thread; returns (thread, errors)."""
        errors = []

        def run():
            try:
                pub = MqttClient(self.cluster.node(node).port, client_id=unique("bg"))
                pub.connect()
                try:
                    for i in range(n):
                        pub.publish(topic, str(i).encode(), qos=qos, timeout=60)
                finally:
                    pub.close()
            except Exception as e:  # reported by the test
                errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, errors

    def delete(self, node, path):
        conn = http.client.HTTPConnection(HOST, self.cluster.node(node).http_port, timeout=10)
        try:
            conn.request("DELETE", path)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def test_a_node_gone_for_good_is_retired(self):
        """DELETE /api/v1/cluster/nodes/<id>: refused for a node that is up (409), for the node
        itself (409) and an unknown one (404); a node that is down leaves every node's view, and
        its routes go, so nothing is forwarded to it any more."""
        topic = unique("gone") + "/t"
        c = self.client(2, client_id=unique("stays"), clean=False, session_expiry=600)
        c.subscribe(topic, 1)
        self.cluster.wait_route(on=1, of=2, filter=topic)
        c.close()
        self.assertEqual(self.delete(1, "/api/v1/cluster/nodes/n2")[0], 409)  # up
        self.assertEqual(self.delete(1, "/api/v1/cluster/nodes/n1")[0], 409)  # itself
        self.assertEqual(self.delete(1, "/api/v1/cluster/nodes/n9")[0], 404)
        self.cluster.node(2).kill9()
        wait_until(lambda: [n["state"] for n in self.cluster.view(1)["nodes"]
                            if n["id"] == "n2"] == ["down"], 20, "node 2 down")
        status, body = self.delete(1, "/api/v1/cluster/nodes/n2")
        self.assertEqual((status, body.get("routes_removed")), (200, 1), body)
        wait_until(lambda: [n["id"] for n in self.cluster.view(1)["nodes"]] == ["n1"], 20,
                   "node 2 gone from the view")
        self.assertEqual(self.cluster.route_filters(on=1, of=2), [])
        # Nothing matches any more: PUBACK 0x10 (No matching subscribers), nothing forwarded.
        raw = RawClient(self.cluster.node(1).port)
        self.addCleanup(raw.close)
        raw.connect(unique("after"))
        raw.publish(topic, b"nobody", qos=1, packet_id=1)
        self.assertEqual(raw.expect(PUBACK).reason_code, 0x10)
        # A node started afterwards does not see it either.
        self.cluster.add_node()
        wait_until(lambda: sorted(n["id"] for n in self.cluster.view(3)["nodes"]) ==
                   ["n1", "n3"], 20, "a node started later without node 2")
        self.assertEqual(self.cluster.route_filters(on=3, of=2), [])

    def cluster_with_node_on_power_cut_disk(self, node):
        """A cluster of its own (in place of setUp's) with node's store on a disk that loses
        power; returns the disk (power_cut.PowerCutDisk)."""
        from power_cut import PowerCutDisk
        disk = PowerCutDisk()
        self.addCleanup(disk.close)
        self.cluster.stop()
        self.cluster = StarlingCluster(nodes=2,
                                       data_dirs={node: os.path.join(disk.path, "data")}).start()
        self.addCleanup(self.cluster.stop)
        return disk

    def test_kill9_of_the_subscribers_node_loses_nothing(self):
        self.crash_subscribers_node(lambda node: node.kill9())

    def test_power_cut_of_the_subscribers_node_loses_nothing(self):
        """The subscribers' node loses power: only what its store synced is left. Its inbox
        offsets were stored with what they routed, so it reads again what it had not made
        durable."""
        disk = self.cluster_with_node_on_power_cut_disk(2)

        def cut(node):
            node.kill9()
            disk.cut()

        self.crash_subscribers_node(cut)

    def test_power_cut_of_the_publishers_node_loses_nothing_acknowledged(self):
        """A QoS 1 publish is acknowledged once its forward is in the durable outbox: after a
        power cut of the publisher's node and its restart, every acknowledged message reaches
        the subscriber on the other node."""
        disk = self.cluster_with_node_on_power_cut_disk(1)
        topic = unique("pc") + "/t"
        sub = self.client(2)
        sub.subscribe(topic, 1)
        self.cluster.wait_route(on=1, of=2, filter=topic)
        # Kafka slow to answer: acknowledged forwards wait in node 1's outbox at the cut.
        for broker_id in (1, 2, 3):
            self.cluster.kafka.set_rtt(broker_id, 300)
        acked = []
        pub = MqttClient(self.cluster.node(1).port, client_id=unique("pcpub"))
        self.addCleanup(pub.close)
        pub.connect()

        def run():
            try:
                for i in range(100000):
                    pub.publish(topic, str(i).encode(), qos=1, timeout=30)
                    acked.append(i)
            except Exception:
                pass  # the node lost power

        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_until(lambda: len(acked) >= 200, 60, "200 acknowledged publishes")
        node1 = self.cluster.node(1)
        node1.kill9()
        disk.cut()
        t.join(30)
        self.assertFalse(t.is_alive())
        for broker_id in (1, 2, 3):
            self.cluster.kafka.set_rtt(broker_id, 0)
        node1.start()
        self.cluster.wait_ready([node1])
        # The case under test: forwards were still in the outbox at the cut.
        self.assertIn("buffered records left from the previous run", node1.log())
        received = set()
        deadline = time.monotonic() + 60
        while not set(acked) <= received and time.monotonic() < deadline:
            try:
                received.add(int(sub.get(timeout=1).payload))
            except AssertionError:
                pass
        self.assertEqual(sorted(set(acked) - received), [])

    def crash_subscribers_node(self, crash):
        """A persistent QoS 1 subscriber on node 2, a publisher on node 1; node 2 crashes
        (crash(node)) halfway and comes back: every message arrives (at least once)."""
        topic = unique("k9") + "/t"
        cid = unique("persistent")
        sub = self.client(2, client_id=cid, clean=False, session_expiry=600)
        sub.subscribe(topic, 1)
        self.cluster.wait_route(on=1, of=2, filter=topic)
        n = 400
        t, errors = self.publish_in_background(1, topic, n)
        wait_until(lambda: sub.messages.qsize() >= 50, 30, "the first messages")
        node2 = self.cluster.node(2)
        crash(node2)
        sub.close()
        t.join(120)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        received = set()
        while not sub.messages.empty():
            received.add(int(sub.messages.get().payload))
        node2.start()
        self.cluster.wait_ready([node2])
        back = self.client(2, client_id=cid, clean=False, session_expiry=600)
        self.assertEqual(back.session_present, 1)
        deadline = time.monotonic() + 60
        while len(received) < n and time.monotonic() < deadline:
            try:
                received.add(int(back.get(timeout=1).payload))
            except AssertionError:
                pass
        self.assertEqual(sorted(received), list(range(n)))

    def test_kafka_outage_pauses_and_loses_nothing(self):
        topic = unique("out") + "/t"
        sub = self.client(2)
        sub.subscribe(topic, 1)
        self.cluster.wait_route(on=1, of=2, filter=topic)
        n = 300
        t, errors = self.publish_in_background(1, topic, n)
        wait_until(lambda: sub.messages.qsize() >= 20, 30, "the first messages")
        self.cluster.kafka.broker_down(-1)
        time.sleep(2)  # the outage lasts a while (not a pass/fail timing)
        self.cluster.kafka.broker_up(-1)
        t.join(120)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        received = set()
        deadline = time.monotonic() + 60
        while len(received) < n and time.monotonic() < deadline:
            try:
                received.add(int(sub.get(timeout=1).payload))
            except AssertionError:
                pass
        self.assertEqual(sorted(received), list(range(n)))



if __name__ == "__main__":
    unittest.main()
