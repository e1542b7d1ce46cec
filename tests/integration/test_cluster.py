"""A Starling cluster on Kafka: three nodes and a three-broker mock Kafka on loopback
(cluster_harness.StarlingCluster). Clients on different nodes see one broker: delivery at every
QoS with exact counts and per-publisher order, retained messages everywhere (also on a node
started afterwards), client ids unique cluster-wide and sessions that move with their
messages, shared groups across nodes, wills across nodes, Kafka consume rules shared by the
nodes. Crashes, power cuts and Kafka outages are in test_cluster_faults.py."""

import json
import os
import subprocess
import threading
import unittest

from cluster_harness import StarlingCluster
from kafka_harness import kcat_produce
from harness import (MqttClient, dashboard_queries, exported_series, http_get, metric, series_in,
                     unique, wait_until)
from mqtt_raw import PUBLISH, PUBREL, RawClient


class ClusterTest(unittest.TestCase):
    """One cluster for the tests that leave it as they found it."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = StarlingCluster(nodes=3).start()
        cls.addClassCleanup(cls.cluster.stop)

    def client(self, node, **kwargs):
        c = MqttClient(self.cluster.node(node).port, **kwargs)
        self.addCleanup(c.close)
        c.connect()
        return c

    def subscribed(self, node, topic, qos, **kwargs):
        """A client on `node` subscribed to topic, once every other node knows the route."""
        c = self.client(node, **kwargs)
        c.subscribe(topic, qos)
        self.wait_route_everywhere(node, topic)
        return c

    def wait_route_everywhere(self, node, topic):
        # The route of a filter is written once; wait until the others have read it.
        for other in range(1, len(self.cluster.nodes) + 1):
            if other == node:
                continue
            wait_until(lambda: self.node_knows(other, node, topic), 20,
                       f"node {other} to route {topic} to node {node}")

    def node_knows(self, on, of, filter):
        return filter in self.cluster.route_filters(on, of)

    # -- delivery ----------------------------------------------------------------------------

    def test_cross_node_delivery_every_qos_exact_counts_in_order(self):
        base = unique("x")
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = f"{base}/q{qos}"
                sub2 = self.subscribed(2, topic, qos)
                sub3 = self.subscribed(3, topic, qos, version=4)
                pub = self.client(1)
                n = 200
                for i in range(n):
                    pub.publish(topic, str(i).encode(), qos=qos)
                for sub in (sub2, sub3):
                    got = sub.collect(n, timeout=30)
                    self.assertEqual([int(m.payload) for m in got], list(range(n)))
                    self.assertTrue(all(m.qos == qos for m in got))
                    sub.expect_nothing(0.5)

    def test_publish_on_another_node_right_after_the_suback_is_delivered(self):
        """The SUBACK waits until every node that is up has read the new route: a publish on
        another node straight after it is delivered (no wait in the test)."""
        pub = self.client(1)
        for i in range(10):
            topic = unique("barrier") + "/t"
            sub = self.client(2 + i % 2)
            sub.subscribe(topic, 1)
            pub.publish(topic, b"first", qos=1)
            self.assertEqual(sub.get(timeout=10).payload, b"first")
            sub.close()

    def test_mosquitto_clients_across_nodes(self):
        topic = unique("mosq") + "/t"
        sub = subprocess.Popen(
            ["mosquitto_sub", "-p", str(self.cluster.node(3).port), "-t", topic, "-q", "1",
             "-C", "50", "-W", "60"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: sub.poll() is None and sub.kill())
        self.wait_route_everywhere(3, topic)
        for i in range(50):
            subprocess.run(["mosquitto_pub", "-p", str(self.cluster.node(1).port), "-t", topic,
                            "-q", "1", "-m", str(i), "-i", "same-publisher"], check=True,
                           timeout=10)
        out, _ = sub.communicate(timeout=60)
        self.assertEqual(out.split(), [str(i) for i in range(50)])

    # -- retained ------------------------------------------------------------------------------

    def test_retained_on_every_node_and_on_a_node_started_later(self):
        topic = unique("ret") + "/state"
        self.client(1).publish(topic, b"v1", qos=1, retain=True)
        for node in (2, 3):
            wait_until(lambda: self.retained_on(node, topic) == b"v1", 20,
                       f"v1 retained on node {node}")
        # The last write wins everywhere, in the log's order.
        self.client(2).publish(topic, b"v2", qos=1, retain=True)
        for node in (1, 2, 3):
            wait_until(lambda: self.retained_on(node, topic) == b"v2", 20,
                       f"v2 retained on node {node}")
        late = self.cluster.add_node()
        self.addCleanup(self.remove_node, late)
        # Ready means caught up: the retained message is there at once.
        c = MqttClient(late.port)
        self.addCleanup(c.close)
        c.connect()
        c.subscribe(topic, 1)
        m = c.get(timeout=5)
        self.assertEqual((m.payload, m.retain), (b"v2", True))
        # Cleared on node 3: gone everywhere.
        self.client(3).publish(topic, b"", qos=1, retain=True)
        for node in (1, 2, 3):
            wait_until(lambda: self.retained_on(node, topic) is None, 20,
                       f"retained cleared on node {node}")

    def remove_node(self, b):
        b.cleanup()
        self.cluster.nodes.remove(b)

    def retained_on(self, node, topic):
        status, body = http_get(self.cluster.node(node).http_port,
                                f"/api/v1/retained?filter={topic}")
        msgs = json.loads(body)["retained"]
        if not msgs:
            return None
        return msgs[0]["payload"].encode()

    # -- client ids ----------------------------------------------------------------------------

    def test_client_id_taken_over_on_another_node(self):
        cid = unique("dup")
        first = self.client(1, client_id=cid)
        second = self.client(2, client_id=cid)
        self.assertTrue(first.disconnected.wait(20), "node 1 did not disconnect the old client")
        self.assertEqual(first.disconnect_reason, 0x8E)
        self.assertFalse(second.disconnected.is_set())

    def test_session_moves_with_queued_and_inflight_messages(self):
        """A persistent session on node 1 with QoS 1/2 messages in flight (one QoS 2 already
        PUBREC'd) and more queued while offline; the client comes back on node 2: session
        present, in-flight ones resent with their packet ids, the PUBREL'd one not sent again,
        the queued ones after them; every QoS 2 message exactly once."""
        base = unique("move")
        t1, t2 = f"{base}/q1", f"{base}/q2"
        cid = unique("mover")
        expiry = {"session_expiry_interval": 600}
        raw = RawClient(self.cluster.node(1).port)
        self.addCleanup(raw.close)
        self.assertEqual(raw.connect(cid, clean_start=False, properties=expiry).reason_code, 0)
        raw.subscribe([(t1, 1), (t2, 2)])
        self.wait_route_everywhere(1, t1)
        self.wait_route_everywhere(1, t2)
        pub = self.client(3)
        for i in range(5):
            pub.publish(t1, f"a{i}".encode(), qos=1)
            pub.publish(t2, f"b{i}".encode(), qos=2)
        first = [raw.expect(PUBLISH, timeout=20) for _ in range(10)]
        ids = {p.payload.decode(): p.packet_id for p in first}
        self.assertEqual(set(ids), {f"a{i}" for i in range(5)} | {f"b{i}" for i in range(5)})
        raw.pubrec(ids["b0"])  # b0 is the client's now: only its PUBREL is left
        self.assertEqual(raw.expect(PUBREL, timeout=10).packet_id, ids["b0"])
        raw.close()  # gone without DISCONNECT: everything else stays in flight
        for i in range(5, 10):
            pub.publish(t1, f"a{i}".encode(), qos=1)
            pub.publish(t2, f"b{i}".encode(), qos=2)
        wait_until(lambda: self.queued_on(1, cid) >= 10, 20, "the queued messages on node 1")

        back = RawClient(self.cluster.node(2).port)
        self.addCleanup(back.close)
        connack = back.connect(cid, clean_start=False, properties=expiry, timeout=20)
        self.assertEqual((connack.reason_code, connack.session_present), (0, True))
        publishes, pubrels = [], []
        while True:
            p = back.recv_packet(timeout=3)
            if p is None:
                break
            if p.type == PUBREL:
                pubrels.append(p.packet_id)
                back.pubcomp(p.packet_id)
            elif p.type == PUBLISH:
                publishes.append(p)
                if p.qos == 1:
                    back.puback(p.packet_id)
                else:
                    back.pubrec(p.packet_id)
        self.assertEqual(pubrels.count(ids["b0"]), 1)
        payloads = [p.payload.decode() for p in publishes]
        self.assertNotIn("b0", payloads)
        resent = [p for p in publishes if p.payload.decode() in ids]
        self.assertTrue(all(p.dup and p.packet_id == ids[p.payload.decode()] for p in resent),
                        resent)
        self.assertEqual(sorted(x for x in payloads if x.startswith("b")),
                         sorted(f"b{i}" for i in range(1, 10)))
        self.assertEqual(sorted(set(x for x in payloads if x.startswith("a"))),
                         sorted(f"a{i}" for i in range(10)))
        # Node 1 has nothing of it left.
        status, _ = http_get(self.cluster.node(1).http_port, f"/api/v1/clients/{cid}")
        self.assertEqual(status, 404)

    def test_session_moves_while_publishers_keep_publishing(self):
        """A persistent QoS 2 subscriber on node 1 reconnects on node 3 while publishers on
        node 1 and node 2 publish 1000 QoS 2 messages each: what is still on its way to node 1,
        or published there, when the session left is passed on to node 3, and node 1 keeps its
        route until every node knows node 3's, so every message arrives exactly once (order
        may break during the move: docs/cluster.md)."""
        topic, cid, n = unique("moving") + "/t", unique("mover"), 1000
        sub = MqttClient(self.cluster.node(1).port, client_id=cid, clean=False,
                         session_expiry=600)
        self.addCleanup(sub.close)
        sub.connect()
        sub.subscribe(topic, 2)
        self.wait_route_everywhere(1, topic)
        sub.disconnect()
        failed = []

        def publish_all(node):
            pub = self.client(node)
            for i in range(n):
                info = pub.client.publish(topic, f"{node}:{i}".encode(), 2)
                info.wait_for_publish(30)
                if not info.is_published():
                    failed.append((node, i))

        publishers = [threading.Thread(target=publish_all, args=(node,)) for node in (1, 2)]
        for p in publishers:
            p.start()
            self.addCleanup(p.join)
        wait_until(lambda: self.queued_on(1, cid) >= 100, 20, "messages queued on node 1")
        back = MqttClient(self.cluster.node(3).port, client_id=cid, clean=False,
                          session_expiry=600)
        self.addCleanup(back.close)
        self.assertEqual(back.connect(timeout=20), 1)
        for p in publishers:
            p.join()
        self.assertEqual(failed, [])
        got = [m.payload.decode() for m in back.collect(2 * n, timeout=60)]
        self.assertEqual(back.drain(1.0), [])
        self.assertEqual(sorted(got), sorted(f"{node}:{i}" for node in (1, 2) for i in range(n)))

    def test_retained_publish_acknowledged_once_every_node_has_it(self):
        """The retained barrier: straight after the PUBACK of a retained publish on node 1, a
        subscriber on node 2 or 3 gets it (no waiting); after a QoS 0 retained publish, the
        publisher's next acknowledgement says the same."""
        base = unique("rb")
        pub = self.client(1)
        for i in range(10):
            topic = f"{base}/{i}"
            if i % 2:
                pub.publish(topic, b"q1", qos=1, retain=True)
            else:
                pub.publish(topic, b"q0", qos=0, retain=True)
                pub.publish(f"{base}/sync", b"", qos=1)  # acknowledged after the QoS 0 one
            for node in (2, 3):
                c = self.client(node)
                c.subscribe(topic, 1)
                # A node sends a subscription's retained messages before it reads the next
                # packet: once this SUBACK is in, they are too (no waiting on a clock).
                c.subscribe(f"{base}/fence", 0)
                self.assertFalse(c.messages.empty(), f"no retained message on node {node}")
                m = c.messages.get_nowait()
                self.assertEqual((m.topic, m.retain), (topic, True), f"node {node}")
                c.close()

    def test_message_of_the_largest_packet_crosses_nodes(self):
        """A message as large as max_packet_size allows (1 MiB by default) goes across nodes:
        the cluster's Kafka records are made as large (librdkafka's own limit is 1,000,000
        bytes)."""
        topic = unique("big") + "/t"
        sub = self.subscribed(2, topic, 1)
        payload = os.urandom(1024 * 1024 - 1024)
        self.client(1).publish(topic, payload, qos=1, timeout=20)
        m = sub.get(timeout=20)
        self.assertEqual((m.topic, len(m.payload), m.payload == payload),
                         (topic, len(payload), True))

    def test_session_larger_than_a_kafka_record_moves_in_several(self):
        """A persistent session with 3 MB queued (twelve 250 kB messages) moves from node 1 to
        node 2 in several handover records: all twelve arrive, in order."""
        topic, cid = unique("heavy") + "/t", unique("heavy")
        sub = self.client(1, client_id=cid, clean=False, session_expiry=600)
        sub.subscribe(topic, 1)
        self.wait_route_everywhere(1, topic)
        sub.disconnect()
        pub = self.client(3)
        payloads = [bytes([i]) * 250_000 for i in range(12)]
        for p in payloads:
            pub.publish(topic, p, qos=1, timeout=20)
        wait_until(lambda: self.queued_on(1, cid) >= 12, 20, "the queued messages on node 1")
        back = MqttClient(self.cluster.node(2).port, client_id=cid, clean=False,
                          session_expiry=600)
        self.addCleanup(back.close)
        self.assertEqual(back.connect(timeout=20), 1)
        got = back.collect(12, timeout=30)
        self.assertEqual([m.payload for m in got], payloads)

    def queued_on(self, node, cid):
        status, body = http_get(self.cluster.node(node).http_port, f"/api/v1/clients/{cid}")
        return json.loads(body)["queued"] if status == 200 else 0

    # -- shared subscriptions ------------------------------------------------------------------

    def test_shared_group_members_on_two_nodes_get_each_message_once(self):
        base = unique("sh")
        flt = f"$share/g/{base}/#"
        a = self.subscribed(1, flt, 1)
        b = self.subscribed(2, flt, 1)
        pub = self.client(3)
        n = 100
        for i in range(n):
            pub.publish(f"{base}/t", str(i).encode(), qos=1)
        got_a = a.drain(1.5)
        got_b = b.drain(0.5)
        payloads = sorted(int(m.payload) for m in got_a + got_b)
        self.assertEqual(payloads, list(range(n)))
        self.assertTrue(got_a and got_b, (len(got_a), len(got_b)))

    # -- wills ---------------------------------------------------------------------------------

    def test_will_published_on_another_node(self):
        topic = unique("will") + "/gone"
        sub = self.subscribed(2, topic, 1)
        c = MqttClient(self.cluster.node(1).port)
        self.addCleanup(c.close)
        c.will_set(topic, b"bye", qos=1)
        c.connect()
        c.drop()
        m = sub.get(timeout=20)
        self.assertEqual(m.payload, b"bye")

    def test_delayed_will_cancelled_by_a_reconnect_on_another_node(self):
        topic = unique("dwill") + "/gone"
        sub = self.subscribed(3, topic, 1)
        cid = unique("dw")
        props = MqttClient.properties("WILLMESSAGE")
        props.WillDelayInterval = 3
        c = MqttClient(self.cluster.node(1).port, client_id=cid, clean=False, session_expiry=60)
        self.addCleanup(c.close)
        c.will_set(topic, b"late", qos=1, properties=props)
        c.connect()
        c.drop()
        back = self.client(2, client_id=cid, clean=False, session_expiry=60)
        self.assertFalse(back.disconnected.is_set())
        sub.expect_nothing(5)
        # Without a reconnect the same will comes after its delay, through another node.
        cid2 = unique("dw")
        d = MqttClient(self.cluster.node(1).port, client_id=cid2, clean=False, session_expiry=60)
        self.addCleanup(d.close)
        d.will_set(topic, b"late2", qos=1, properties=props)
        d.connect()
        d.drop()
        m = sub.get(timeout=20)
        self.assertEqual(m.payload, b"late2")

    # -- operators -----------------------------------------------------------------------------

    def test_cluster_view_and_metrics(self):
        v = self.cluster.view(1)
        self.assertEqual(v["node_id"], "n1")
        self.assertTrue(v["ready"])
        states = {n["id"]: n["state"] for n in v["nodes"]}
        for i in (1, 2, 3):
            self.assertEqual(states[f"n{i}"], "up")
        self.assertGreaterEqual(metric(self.cluster.node(1).http_port, "starling_cluster_nodes",
                                       state="up"), 3)
        self.assertEqual(metric(self.cluster.node(1).http_port, "starling_cluster_ready"), 1)
        status, body = http_get(self.cluster.node(2).http_port, "/readyz")
        self.assertEqual(status, 200)
        self.assertIn("cluster", json.loads(body)["checks"])

    def test_grafana_dashboard_cluster_metrics_are_exported(self):
        """Every starling_cluster_* series the dashboard's cluster row queries exists on a node
        (parsed with prometheus_client's parser)."""
        used = series_in(dashboard_queries(), "starling_cluster_")
        self.assertGreater(len(used), 5)
        status, body = http_get(self.cluster.node(1).http_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(used - exported_series(body.decode()), set())


class ClusterKafkaRulesTest(unittest.TestCase):
    """Kafka consume rules on every node of a cluster: the nodes share the rule's consumer
    group (as static members named by their node ids), so each record is consumed by one node
    and forwarded to subscribers on the others: once each, cluster-wide, once the group has
    settled. While it rebalances Kafka's at-least-once applies: a consumer commits what it
    routed before giving a partition up, but a coordinator in the middle of a rebalance may
    refuse that commit (the mock does), and the next owner then reads from the last commit
    that was taken."""

    def test_each_record_reaches_a_subscriber_once_whatever_node_consumed_it(self):
        topic = unique("cmd").replace("-", "_")
        rule = (f'[[kafka.consume]]\ntopics = ["{topic}"]\ngroup = "{topic}"\n'
                f'offset_reset = "earliest"\nmqtt_topic = "k/{{kafka_topic}}"\nqos = 1\n')
        cluster = StarlingCluster(nodes=3, extra=rule, topics={topic: 6})
        cluster.start()
        self.addCleanup(cluster.stop)
        sub = MqttClient(cluster.node(3).port)
        self.addCleanup(sub.close)
        sub.connect()
        sub.subscribe(f"k/{topic}", 1)
        for on in (1, 2):
            cluster.wait_route(on=on, of=3, filter=f"k/{topic}")

        # Every node in the group with its share of the six partitions. A hang guard: three
        # consumers settling into one group on the mock took from 8 s (alone) to over 60 s
        # (beside the other cluster tests).
        def settled():
            shares = [metric(cluster.node(i).http_port, "starling_kafka_assigned_partitions",
                             group=topic, rule="0") for i in (1, 2, 3)]
            return all(share > 0 for share in shares) and sum(shares) == 6
        wait_until(settled, 240, "the consumer group settled on three nodes", interval=0.5)
        n = 300
        kcat_produce(cluster.kafka.bootstrap, topic,
                     [{"key": str(i % 17), "value": str(i)} for i in range(n)])
        got = sub.collect(n, timeout=120)  # a hang guard
        self.assertEqual(sorted(int(m.payload) for m in got), list(range(n)))
        sub.expect_nothing(1.0)


if __name__ == "__main__":
    unittest.main()
