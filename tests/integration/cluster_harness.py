"""Starling clusters for the tests: N nodes on loopback sharing one starling-kafka-mock.

    with StarlingCluster(nodes=3) as c:      # mock Kafka with 3 brokers, nodes n1..n3
        c.node(1).port, c.node(2).http_port  # each node is a harness.Broker (HTTP on)
        c.wait_ready()                       # every node's /readyz is 200
        c.wait_route(on=1, of=2, filter="a/#")  # node 1 forwards a/# to node 2
        c.add_node()                         # one more, started afterwards

Nodes share [cluster] name (unique per cluster) and each has its own node_id and data dir.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile

from harness import (HOST, Broker, Lifecycle, free_port, http_get, scrape_metrics, unique,
                     wait_for_port, wait_until)
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


class Node(Broker):
    """A cluster node: always one Starling process (harness.Broker makes a whole cluster in
    place of a broker when STARLING_TEST_BROKER=cluster)."""


class StarlingCluster:
    def __init__(self, nodes=3, kafka_brokers=3, extra="", data_dirs=None, topics=None,
                 head="", node_extra=None, threads=2):
        self.count = nodes
        self.topics = topics or {}  # Kafka topics made before the nodes start: name -> partitions
        self.data_dirs = data_dirs or {}  # node number -> data dir
        self.kafka = MockKafka(brokers=kafka_brokers)
        self.name = unique("cl").replace("-", "_")
        self.extra = extra
        self.head = head  # config text before the cluster's (top-level keys, [mqtt], ...)
        self.node_extra = node_extra  # node number -> more config text for that node alone
        self.threads = threads
        self.nodes = []

    def start(self):
        self.kafka.start()
        try:
            for topic, partitions in self.topics.items():
                self.kafka.create_topic(topic, partitions)
            for i in range(1, self.count + 1):
                extra = self.node_extra(i) if self.node_extra else ""
                self.add_node(wait=False, data_dir=self.data_dirs.get(i), extra=extra)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self, wait=True, extra="", data_dir=None):
        """One more node (n<count+1>); data_dir: its store somewhere else (a PowerCutDisk)."""
        node_id = f"n{len(self.nodes) + 1}"
        b = Node(config_text=self.head + "\n" + cluster_config(
            self.kafka.bootstrap, self.name, node_id, self.extra + extra), http=True,
            data_dir=data_dir, threads=self.threads)
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


HAPROXY_CONFIG = """global
    maxconn 4000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend mqtt
    bind {host}:{port}
    default_backend nodes

backend nodes
    balance roundrobin
{servers}
"""


def haproxy_binary():
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(found):
        raise RuntimeError("haproxy is not installed (scripts/deps.sh test installs it)")
    return found


class BalancedCluster(Lifecycle):
    """What a user runs: three nodes behind HAProxy, round robin, PROXY protocol v2 on.

    harness.Broker(...) returns one of these in place of a single broker when
    STARLING_TEST_BROKER=cluster, with the same arguments and interface (start, stop, kill9,
    restart, cleanup, log, port, http_port), so that a suite's tests run unchanged against a
    cluster: `port` is HAProxy's, and consecutive connections land on nodes 1, 2, 3, 1, ...
    config_text goes into every node's file; the nodes serve HAProxy on a listener of their
    own with proxy_protocol = true. http_port is node 1's."""

    NODES = 3

    def __init__(self, config_text=None, extra_args=None, threads=2, data_dir=None,
                 mosquitto_config="", http=False, env=None, listener_ports=()):
        if extra_args or env or listener_ports or data_dir:
            raise RuntimeError("a balanced cluster takes config text and threads only")
        self.config_text = config_text or ""
        self.threads = threads
        self.port = free_port()
        self.behind = [free_port() for _ in range(self.NODES)]  # each node's PROXY listener
        self.http_port = None
        self.tmp = tempfile.mkdtemp(prefix="starling-lb-")
        self.cluster = None
        self.haproxy = None

    def _node_listener(self, i):
        return (f'[listeners.behind_haproxy]\nbind = "{HOST}:{self.behind[i - 1]}"\n'
                f'proxy_protocol = true\n')

    def start(self):
        self.cluster = StarlingCluster(nodes=self.NODES, head=self.config_text,
                                       node_extra=self._node_listener, threads=self.threads)
        self.cluster.start()
        try:
            servers = "\n".join(f"    server n{i} {HOST}:{p} send-proxy-v2"
                                for i, p in enumerate(self.behind, 1))
            conf = os.path.join(self.tmp, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(HAPROXY_CONFIG.format(host=HOST, port=self.port, servers=servers))
            log = open(os.path.join(self.tmp, "haproxy.log"), "ab")
            self.haproxy = subprocess.Popen([haproxy_binary(), "-db", "-f", conf], stdout=log,
                                            stderr=subprocess.STDOUT)
            log.close()
            wait_for_port(self.port, self.haproxy)
        except BaseException:
            self.stop()
            raise
        self.http_port = self.cluster.node(1).http_port
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Stops HAProxy and every node (by pid), then the mock Kafka; AssertionError as
        harness.Broker.stop when a node ended badly."""
        if self.haproxy is not None:
            if self.haproxy.poll() is None:
                self.haproxy.terminate()
                try:
                    self.haproxy.wait(10)
                except subprocess.TimeoutExpired:
                    self.haproxy.kill()
                    self.haproxy.wait()
            self.haproxy = None
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            errors = []
            for b in cluster.nodes:
                try:
                    b.stop(sig=sig, timeout=timeout)
                except AssertionError as e:
                    errors.append(str(e))
                finally:
                    shutil.rmtree(b.tmp, ignore_errors=True)
            cluster.kafka.stop()
            if errors:
                raise AssertionError("\n".join(errors))

    def kill9(self):
        return self.stop(sig=signal.SIGKILL)

    def metric_sum(self, name):
        """The sum of every sample of a /metrics family over the nodes."""
        return sum(value for b in self.cluster.nodes
                   for (n, _), value in scrape_metrics(b.http_port).items() if n == name)

    def settle(self, timeout=30.0):
        """Waits until what the nodes acknowledged has reached its destination nodes: every
        node's Kafka outbox is empty and its inbox read to the end. (A single broker has
        routed a message when it acknowledges it; a cluster forwards it after.)"""
        def quiet(b):
            samples = scrape_metrics(b.http_port)
            return (samples.get(("starling_kafka_buffer_messages", ()), 0) == 0 and
                    samples.get(("starling_cluster_inbox_lag", ()), -1) == 0)
        wait_until(lambda: all(quiet(b) for b in self.cluster.nodes), timeout,
                   "every node's outbox empty and inbox read")

    def log(self):
        nodes = self.cluster.nodes if self.cluster else []
        return "".join(f"--- node {b.node_id} ---\n{b.log()}" for b in nodes)
