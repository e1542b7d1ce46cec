"""Starling clusters for the tests: N nodes on loopback sharing one starling-kafka-mock.

    with StarlingCluster(nodes=3) as c:      # mock Kafka with 3 brokers, nodes n1..n3
        c.node(1).port, c.node(2).http_port  # each node is a harness.Broker (HTTP on)
        c.wait_ready()                       # every node's /readyz is 200
        c.wait_route(on=1, of=2, filter="a/#")  # node 1 forwards a/# to node 2
        c.add_node()                         # one more, started afterwards

Nodes share [cluster] name (unique per cluster) and each has its own node_id and data dir.
"""

import json

from harness import Broker, http_get, unique, wait_until
from kafka_harness import MockKafka

# Quick reconnects after a Kafka outage; heartbeats often enough for node states to show.
CLUSTER_KAFKA = """
[kafka.properties]
"reconnect.backoff.ms" = 100
"reconnect.backoff.max.ms" = 500
"""


def cluster_config(bootstrap, name, node_id, extra=""):
    return (f'[kafka]\nbootstrap = "{bootstrap}"\n{CLUSTER_KAFKA}\n'
            f'[cluster]\nname = "{name}"\nnode_id = "{node_id}"\nheartbeat_ms = 300\n'
            f'node_timeout_ms = 3000\n{extra}\n')


class StarlingCluster:
    def __init__(self, nodes=3, kafka_brokers=3, extra="", data_dirs=None, topics=None):
        self.count = nodes
        self.topics = topics or {}  # Kafka topics made before the nodes start: name -> partitions
        self.data_dirs = data_dirs or {}  # node number -> data dir
        self.kafka = MockKafka(brokers=kafka_brokers)
        self.name = unique("cl").replace("-", "_")
        self.extra = extra
        self.nodes = []

    def start(self):
        self.kafka.start()
        try:
            for topic, partitions in self.topics.items():
                self.kafka.create_topic(topic, partitions)
            for i in range(1, self.count + 1):
                self.add_node(wait=False, data_dir=self.data_dirs.get(i))
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self, wait=True, extra="", data_dir=None):
        """One more node (n<count+1>); data_dir: its store somewhere else (a PowerCutDisk)."""
        node_id = f"n{len(self.nodes) + 1}"
        b = Broker(config_text=cluster_config(self.kafka.bootstrap, self.name, node_id,
                                              self.extra + extra), http=True, data_dir=data_dir)
        b.node_id = node_id
        self.nodes.append(b)
        b.start()
        if wait:
            self.wait_ready([b])
        return b

    def node(self, i):
        """Node i, counted from 1 (n1 is node(1))."""
        return self.nodes[i - 1]

    def view(self, i):
        status, body = http_get(self.node(i).http_port, "/api/v1/cluster")
        assert status == 200, (status, body)
        return json.loads(body)

    def wait_ready(self, nodes=None, timeout=30.0):
        for b in nodes or self.nodes:
            wait_until(lambda: b.proc is not None and http_get(b.http_port, "/readyz")[0] == 200,
                       timeout, f"node {b.node_id} ready")

    def route_filters(self, on, of):
        """The filters node `on` routes to node `of` (GET /api/v1/cluster/routes)."""
        status, body = http_get(self.node(on).http_port,
                                f"/api/v1/cluster/routes?node={self.node(of).node_id}&limit=1000")
        if status == 404:
            return []  # `of` not heard of yet
        assert status == 200, (status, body)
        return json.loads(body)["routes"]

    def wait_route(self, on, of, filter, timeout=20.0):
        wait_until(lambda: filter in self.route_filters(on, of), timeout,
                   f"node {on} to route {filter} to node {of}")

    def stop(self):
        errors = []
        for b in self.nodes:
            try:
                b.cleanup()
            except AssertionError as e:
                errors.append(str(e))
        self.kafka.stop()
        if errors:
            raise AssertionError("\n".join(errors))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
