"""Resource limits through real sockets: every [limits] / [listeners.NAME] / [mqtt] limit is
enforced (a refused connection is closed at once after accept, a refused packet gets its exact
reason code) and counted in /metrics (starling_limit_hits_total{limit=...}, and
starling_messages_dropped_total{reason="queue_full"} for the queue and buffer limits). The other
drop reasons (expired, too_large, offline_qos0) are each caused and counted by value in
DropCounters.

Per-address limits are checked with several loopback source addresses: the whole 127/8 is
loopback on Linux, so a client socket bound to 127.0.0.2 reaches a broker on 127.0.0.1 and the
broker sees 127.0.0.2 as its peer.

Starling-specific (its config and metrics); skipped against Mosquitto.
"""

import socket
import threading
import time
import unittest

from harness import (HOST, BrokerTestCase, against_mosquitto, free_port, http_get, metric, unique,
                     wait_until)
from mqtt_raw import (CONNACK, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, ConnectionClosed,
                     PINGREQ_BYTES, RawClient, encode_connect, encode_publish)

RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
SUBACK_FAILURE_311 = 0x80

CLOSED_ERRORS = (ConnectionClosed, ConnectionResetError, BrokenPipeError)


class SourceClient(RawClient):
    """A RawClient whose socket is bound to a loopback source address before connecting, with
    an optional small SO_RCVBUF (set before connect, so the window is small from the start)."""

    def __init__(self, port, version=5, source="127.0.0.1", rcvbuf=None, timeout=5.0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.bind((source, 0))
            sock.connect((HOST, port))
        except OSError:
            sock.close()
            raise
        self.version = version
        self.sock = sock
        self.buf = bytearray()
        self.next_id = 0
        self.closed = False


def attempt(port, source="127.0.0.1", version=5, client_id=None, timeout=5.0, **connect):
    """Opens a connection from source and sends CONNECT. Returns (client, CONNACK) when the
    broker answers, (None, None) when it closes the connection without one (refused).
    AssertionError when neither happens within timeout."""
    c = SourceClient(port, version, source)
    try:
        c.send(encode_connect(client_id or unique("lim"), version, **connect))
        p = c.recv_packet(timeout)
    except CLOSED_ERRORS:
        c.close()
        return None, None
    if p is None:
        c.close()
        raise AssertionError(f"connection from {source}: neither CONNACK nor close in {timeout}s")
    if p.type != CONNACK:
        c.close()
        raise AssertionError(f"expected CONNACK, got {p!r}")
    return c, p


def read_until_closed(sock, timeout):
    """Reads and discards everything until the peer closes (True) or timeout (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(1 << 20):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


@unittest.skipIf(against_mosquitto(), "Starling's limits and metrics")
class LimitTest(BrokerTestCase):
    """One broker per test (with HTTP, for /metrics), started by the test with its limits; at
    the end of each test the broker process must still be alive and serving."""

    broker_scope = None

    def setUp(self):
        super().setUp()
        self.clients = []  # closed before the check that the broker still serves

    def start(self, config, **kw):
        self.broker = self.new_broker(config_text=config, http=True, **kw)
        self.addCleanup(self.assert_alive)
        self.port = self.broker.port
        return self.broker

    def assert_alive(self):
        for c in self.clients:
            c.close()
        self.assertIsNone(self.broker.proc.poll(), "the broker process exited")

        def serves():
            try:
                self.check_serves()
                return True
            except (AssertionError, OSError, ConnectionClosed):
                return False  # a slot or a rate token not free yet: tried again
        wait_until(serves, 15, "the broker serves new clients after the test")

    def check_serves(self):
        """A fresh subscriber gets a fresh publisher's QoS 1 message. Like
        mqtt_raw.check_broker_serves, but from two source addresses no test limits (a
        per-address limit of 1 would refuse the second of two clients from 127.0.0.1) and on a
        short topic (within the topic limits of any test here)."""
        tag = unique("")[-8:]
        with SourceClient(self.port, source="127.0.0.201") as sub, \
                SourceClient(self.port, source="127.0.0.202") as pub:
            self.assertEqual(sub.connect(f"hc-sub-{tag}").reason_code, 0)
            self.assertEqual(sub.subscribe([(f"hc/{tag}", 1)]).reason_codes, [1])
            self.assertEqual(pub.connect(f"hc-pub-{tag}").reason_code, 0)
            pid = pub.publish(f"hc/{tag}", b"alive", qos=1)
            self.assertEqual(pub.expect(PUBACK).packet_id, pid)
            msg = sub.expect(PUBLISH)
            self.assertEqual((msg.topic, msg.payload), (f"hc/{tag}", b"alive"))

    def hits(self, limit):
        return metric(self.broker.http_port, "starling_limit_hits_total", limit=limit)

    def all_hits(self):
        names = ("max_connections", "listener_max_connections", "max_connections_per_address",
                 "max_connection_rate_per_address", "max_packet_size", "max_topic",
                 "max_subscriptions_per_client", "max_publish_rate", "slow_client",
                 "connect_timeout", "receive_maximum")
        return {n: self.hits(n) for n in names}

    def dropped(self, reason="queue_full"):
        return metric(self.broker.http_port, "starling_messages_dropped_total", reason=reason)

    def client(self, version=5, source="127.0.0.1", port=None, rcvbuf=None, client_id=None,
               **connect):
        """A connected client (CONNACK 0 required)."""
        c = SourceClient(port or self.port, version, source, rcvbuf)
        self.clients.append(c)
        ack = c.connect(client_id or unique("lim"), **connect)
        self.assertEqual(ack.reason_code, 0, ack)
        return c

    def admitted(self, source="127.0.0.1", port=None, timeout=10.0, version=5):
        """A connection the broker admits, retried while it refuses: for a slot that frees
        asynchronously (the harness's readiness probe, a client that just closed) or a
        listener still opening. Retries may add to the refusal counters."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                c, ack = attempt(port or self.port, source, version)
            except ConnectionRefusedError:
                c = ack = None
            if c is not None:
                self.clients.append(c)
                self.assertEqual(ack.reason_code, 0, ack)
                return c
            if time.monotonic() > deadline:
                raise AssertionError(f"no connection from {source} admitted in {timeout}s")
            time.sleep(0.1)

    def assert_refused(self, source="127.0.0.1", port=None):
        c, ack = attempt(port or self.port, source)
        if c is not None:
            self.clients.append(c)
            self.fail(f"connection from {source} admitted (CONNACK {ack!r}), expected refused")

    def assert_hit_deltas(self, before, expected):
        """The limit counters moved by exactly `expected` ({limit: delta}), the others not."""
        after = self.all_hits()
        deltas = {k: after[k] - before[k] for k in after}
        want = {k: expected.get(k, 0) for k in after}
        self.assertEqual(deltas, want)


class ConnectionLimits(LimitTest):

    def test_max_connections_refuses_the_next_socket_and_counts_it(self):
        """[limits] max_connections = 3: with 3 open, a 4th connection (from any address) is
        closed without a CONNACK and counted max_connections; once one closes, a new one gets
        in; the HTTP API is not an MQTT connection and keeps answering."""
        self.start("[limits]\nmax_connections = 3\n")
        held = [self.admitted() for _ in range(3)]
        before = self.all_hits()
        self.assert_refused("127.0.0.1")
        self.assert_refused("127.0.0.2")
        self.assert_hit_deltas(before, {"max_connections": 2})
        self.assertEqual(http_get(self.broker.http_port, "/healthz")[0], 200)
        # The refused sockets took no slot: one closed connection makes room for one.
        held[0].disconnect()
        held[0].close()
        self.admitted("127.0.0.2")
        before = self.all_hits()
        self.assert_refused("127.0.0.3")
        self.assert_hit_deltas(before, {"max_connections": 1})

    def test_listener_max_connections_applies_to_its_listener_only(self):
        """[listeners.limited] max_connections = 2 next to an unlimited listener: the 3rd
        connection on `limited` is refused (counted listener_max_connections, not
        max_connections) while `open` accepts 5."""
        other = free_port()
        self.start(f"""
[listeners.limited]
bind = "127.0.0.1:{free_port()}"
max_connections = 2

[listeners.open]
bind = "127.0.0.1:{other}"
""")
        for _ in range(2):
            self.admitted()
        self.admitted(port=other)  # the second listener is up
        before = self.all_hits()
        self.assert_refused()
        self.assert_refused(source="127.0.0.2")
        for _ in range(5):
            self.client(port=other)
        self.assert_hit_deltas(before, {"listener_max_connections": 2})

    def test_max_connections_per_address_counts_addresses_independently(self):
        """max_connections_per_address = 2: two from 127.0.0.1 and two from 127.0.0.2 are
        admitted; a third from either is refused (counted max_connections_per_address);
        127.0.0.3 still gets in; closing one from 127.0.0.2 frees exactly one place for it."""
        self.start("[limits]\nmax_connections_per_address = 2\n")
        one = [self.admitted("127.0.0.1") for _ in range(2)]
        two = [self.admitted("127.0.0.2") for _ in range(2)]
        before = self.all_hits()
        self.assert_refused("127.0.0.1")
        self.assert_refused("127.0.0.2")
        self.assert_refused("127.0.0.2")
        self.client(source="127.0.0.3")
        self.assert_hit_deltas(before, {"max_connections_per_address": 3})
        # Both 127.0.0.1 connections still work.
        for c in one:
            c.ping()
            c.expect(PINGRESP)
        two[0].disconnect()
        two[0].close()
        self.admitted("127.0.0.2")
        before = self.all_hits()
        self.assert_refused("127.0.0.2")
        self.assert_hit_deltas(before, {"max_connections_per_address": 1})

    def test_connection_rate_per_address(self):
        """max_connection_rate_per_address = 5 (a bucket of one second's worth): 30 connections
        from 127.0.0.2 as fast as possible: the first 5 are admitted, at most 5 per second more,
        the rest refused and each refusal counted; 127.0.0.3 is admitted meanwhile; once the
        bucket refills, 127.0.0.2 gets in again."""
        rate, total = 5, 30
        self.start(f"[limits]\nmax_connection_rate_per_address = {rate}\n")
        before = self.all_hits()
        outcomes = []
        started = time.monotonic()
        for _ in range(total):
            c, ack = attempt(self.port, "127.0.0.2")
            outcomes.append(c is not None)
            if c is not None:
                self.assertEqual(ack.reason_code, 0)
                c.close()
        elapsed = time.monotonic() - started
        self.client(source="127.0.0.3")
        accepted, refused = sum(outcomes), outcomes.count(False)
        self.assertEqual(outcomes[:rate], [True] * rate, outcomes)
        self.assertLessEqual(accepted, rate + rate * elapsed + 1,
                             f"{accepted} admitted in {elapsed:.2f}s at {rate}/s")
        self.assertGreater(refused, 0)
        self.assert_hit_deltas(before, {"max_connection_rate_per_address": refused})
        self.admitted("127.0.0.2")


class PublishRate(LimitTest):

    def test_publisher_over_max_publish_rate_is_slowed_not_dropped(self):
        """max_publish_rate = 50: 200 QoS 0 PUBLISHes written at once are all delivered, in
        order, but over at least ~3 s (150 beyond the one-second bucket at 50/s; 2 s asserted),
        and the pause is counted (max_publish_rate > 0). Another publisher is not slowed: its
        message arrives before the throttled publisher's last one."""
        total, rate = 200, 50
        self.start(f"[limits]\nmax_publish_rate = {rate}\n")
        topic = unique("rate")
        sub = self.client()
        sub.subscribe([(f"{topic}/#", 0)])
        pub = self.client()
        before = self.hits("max_publish_rate")
        pub.send_bytes(b"".join(encode_publish(f"{topic}/a", f"m{i}".encode())
                                for i in range(total)))
        other = self.client()
        other.publish(f"{topic}/b", b"other", qos=1)
        other.expect(PUBACK, timeout=10)
        got, times = [], []
        deadline = time.monotonic() + 30
        while len(got) < total + 1:
            p = sub.recv_packet(max(0.01, deadline - time.monotonic()))
            self.assertIsNotNone(p, f"got {len(got)} of {total + 1} messages in 30 s")
            self.assertEqual(p.type, PUBLISH)
            got.append((p.topic, p.payload))
            times.append(time.monotonic())
        mine = [payload for t, payload in got if t == f"{topic}/a"]
        self.assertEqual(mine, [f"m{i}".encode() for i in range(total)])
        self.assertLess(got.index((f"{topic}/b", b"other")), total,
                        "the other publisher waited for the throttled one")
        first_to_last = times[total] - times[0]
        self.assertGreaterEqual(first_to_last, 2.0,
                                f"{total} messages passed in {first_to_last:.2f}s at {rate}/s")
        self.assertGreater(self.hits("max_publish_rate") - before, 0)
        self.assertEqual(sub.collect(0.5), [])


class SlowClients(LimitTest):

    def run_slow_subscriber(self, qos):
        """A subscriber that never reads (SO_RCVBUF 4 KiB) next to one that does, with a
        publisher sending 60 payloads of 100 KiB at `qos`; slow_client_timeout_ms = 1000: the
        slow one is evicted (closed, counted slow_client, its session gone), the good one gets
        all 60 and one more published after the eviction."""
        # 6 MB: more than the kernel can hold for the slow one (its 4 KiB receive buffer and
        # at most wmem_max, 4 MiB, on the broker's side), so its socket is full for sure;
        # less than the broker buffers for the good one (8 MiB max_out_buffer_bytes and the
        # socket buffers), so a good subscriber that is briefly slow loses nothing.
        count, size = 60, 100 * 1024
        self.start("[limits]\nslow_client_timeout_ms = 1000\n")
        topic = unique("slow")
        slow_id = unique("slow")
        slow = self.client(rcvbuf=4096, client_id=slow_id)
        slow.subscribe([(topic, qos)])
        good = self.client()
        good.subscribe([(topic, qos)])
        before = self.all_hits()

        received, errors = [], []

        def read_good():
            try:
                while len(received) < count + 1:
                    p = good.recv_packet(30)
                    if p is None:
                        errors.append(f"good subscriber stalled after {len(received)}")
                        return
                    if p.type == PUBLISH:
                        received.append(len(p.payload))
                        if p.qos == 1:
                            good.puback(p.packet_id)
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))

        reader = threading.Thread(target=read_good, daemon=True)
        reader.start()
        pub = self.client()
        payload = b"x" * size
        if qos == 0:
            pub.send_bytes(b"".join(encode_publish(topic, payload) for _ in range(count)))
        else:
            for i in range(count):
                pub.publish(topic, payload, qos=1, packet_id=i + 1)
            acks = set()
            while len(acks) < count:
                p = pub.recv_packet(30)
                self.assertIsNotNone(p, f"publisher got {len(acks)} of {count} PUBACKs")
                if p.type == PUBACK:
                    self.assertEqual(p.reason_code, 0)
                    acks.add(p.packet_id)
        wait_until(lambda: self.hits("slow_client") > before["slow_client"], 20,
                   "the slow subscriber evicted (limit_hits slow_client)")
        self.assertTrue(read_until_closed(slow.sock, 20), "the slow subscriber's socket is open")
        # The good subscriber was not evicted and keeps receiving after the eviction.
        pub.publish(topic, b"after", qos=1, packet_id=60000)
        reader.join(40)
        self.assertFalse(reader.is_alive(), "the good subscriber did not get everything")
        self.assertEqual(errors, [])
        self.assertEqual(received, [size] * count + [len(b"after")])
        self.assert_hit_deltas(before, {"slow_client": 1})
        # The evicted client's session (clean, expiry 0) is gone.
        self.assertEqual(http_get(self.broker.http_port, f"/api/v1/clients/{slow_id}")[0], 404)

    def test_slow_qos0_subscriber_evicted_while_another_keeps_receiving(self):
        self.run_slow_subscriber(qos=0)

    def test_slow_qos1_subscriber_evicted_while_another_keeps_receiving(self):
        self.run_slow_subscriber(qos=1)

    def test_max_out_buffer_bytes_drops_qos0_for_a_non_reading_subscriber(self):
        """max_out_buffer_bytes = 64 KiB and a subscriber that does not read (not evicted: the
        slow-client timeout is the default 60 s): of 1000 QoS 0 messages of 10 KiB some are
        dropped and counted (messages_dropped_total{reason="queue_full"}); once it reads, it
        gets exactly the others, in order."""
        total = 1000
        self.start("[limits]\nmax_out_buffer_bytes = 65536\n")
        topic = unique("outbuf")
        slow = self.client(rcvbuf=4096)
        slow.subscribe([(topic, 0)])
        pub = self.client()
        before = self.dropped()
        pub.send_bytes(b"".join(encode_publish(topic, b"%06d" % i + b"x" * 10234)
                                for i in range(total)))
        # A QoS 1 message on another topic: its PUBACK comes after the 1000 were routed.
        pub.publish(unique("fence"), b"", qos=1, packet_id=1)
        pub.expect(PUBACK, timeout=30)
        dropped = self.dropped() - before
        self.assertGreater(dropped, 0)
        got = [int(p.payload[:6]) for p in slow.collect(timeout=60, quiet=2.0)
               if p.type == PUBLISH]
        self.assertEqual(len(got) + dropped, total, f"{len(got)} received, {dropped} dropped")
        self.assertEqual(got, sorted(got))
        self.assertEqual(self.hits("slow_client"), 0)


class PacketLimits(LimitTest):

    def test_max_subscriptions_per_client(self):
        """max_subscriptions_per_client = 3: a 4th filter gets SUBACK 0x97 (5.0) / 0x80
        (3.1.1), counted; subscribing again to a filter held does not count as a new one;
        after an unsubscribe there is room for one more. A refused filter gets no messages."""
        self.start("[limits]\nmax_subscriptions_per_client = 3\n")
        before = self.all_hits()
        for version, refused in ((5, RC_QUOTA_EXCEEDED), (4, SUBACK_FAILURE_311)):
            with self.subTest(version=version):
                base = unique(f"subs{version}")
                c = self.client(version)
                for i in range(3):
                    self.assertEqual(c.subscribe([(f"{base}/{i}", 1)]).reason_codes, [1])
                self.assertEqual(c.subscribe([(f"{base}/3", 1)]).reason_codes, [refused])
                self.assertEqual(c.subscribe([(f"{base}/0", 0), (f"{base}/4", 1)]).reason_codes,
                                 [0, refused])
                pub = self.client()
                pub.publish(f"{base}/3", b"refused", qos=1)
                pub.expect(PUBACK)
                pub.publish(f"{base}/2", b"held", qos=1)
                pub.expect(PUBACK)
                msg = c.expect(PUBLISH)
                self.assertEqual((msg.topic, msg.payload), (f"{base}/2", b"held"))
                c.unsubscribe([f"{base}/1"])
                self.assertEqual(c.subscribe([(f"{base}/4", 1)]).reason_codes, [1])
                self.assertEqual(c.subscribe([(f"{base}/5", 1)]).reason_codes, [refused])
        self.assert_hit_deltas(before, {"max_subscriptions_per_client": 6})

    def test_max_topic_length_and_levels(self):
        """max_topic_length = 20, max_topic_levels = 3: a topic of exactly 20 bytes and 3
        levels is delivered; a longer topic or one more level in a PUBLISH closes the
        connection (5.0: DISCONNECT 0x90 first); in a SUBSCRIBE the filter is refused (0x8F /
        0x80) and the connection stays. Each is counted max_topic."""
        self.start("[limits]\nmax_topic_length = 20\nmax_topic_levels = 3\n")
        tag = unique("")[-6:]
        at_limit = f"t{tag}/b/" + "c" * (20 - len(f"t{tag}/b/"))
        self.assertEqual(len(at_limit), 20)
        too_long, too_deep = at_limit + "c", f"t{tag}/b/c/d"
        before = self.all_hits()

        sub = self.client()
        self.assertEqual(sub.subscribe([(f"t{tag}/+/#", 1)]).reason_codes, [1])
        pub = self.client()
        pub.publish(at_limit, b"ok", qos=1)
        pub.expect(PUBACK)
        self.assertEqual(sub.expect(PUBLISH).topic, at_limit)

        for version in (5, 4):
            for topic in (too_long, too_deep):
                with self.subTest(version=version, topic=topic):
                    c = self.client(version)
                    c.publish(topic, b"no", qos=1)
                    reason = c.wait_closed(5)
                    self.assertEqual(reason, RC_TOPIC_NAME_INVALID if version == 5 else None)
                    self.assertEqual(c.skipped, [])
        self.assertEqual(sub.collect(1.0), [])

        for version, refused in ((5, RC_TOPIC_FILTER_INVALID), (4, SUBACK_FAILURE_311)):
            with self.subTest(version=version, what="subscribe"):
                c = self.client(version)
                ack = c.subscribe([(too_long, 0), (f"t{tag}/+/c/#", 0), (at_limit, 0)])
                self.assertEqual(ack.reason_codes, [refused, refused, 0])
                c.ping()
                c.expect(PINGRESP)
        self.assert_hit_deltas(before, {"max_topic": 8})

    def test_max_packet_size_counted(self):
        """[mqtt] max_packet_size = 1000: a PUBLISH of exactly 1000 bytes is accepted; 1001
        bytes gets DISCONNECT 0x95 (5.0) / a close (3.1.1); a CONNECT over the limit is closed
        without a CONNACK. Each refusal is counted max_packet_size."""
        self.start("[mqtt]\nmax_packet_size = 1000\n")
        topic = unique("mps")
        sub = self.client()
        sub.subscribe([(topic, 1)])

        def publish_of(size, version):
            """A QoS 1 PUBLISH of exactly size bytes, and its payload's length."""
            empty = len(encode_publish(topic, b"", qos=1, packet_id=7, version=version))
            n = size - empty - 1  # the remaining length takes 2 bytes here, not 1
            return encode_publish(topic, b"p" * n, qos=1, packet_id=7, version=version), n

        before = self.all_hits()
        for version in (5, 4):
            with self.subTest(version=version):
                (exact, n), (over, _) = publish_of(1000, version), publish_of(1001, version)
                self.assertEqual((len(exact), len(over)), (1000, 1001))
                c = self.client(version)
                c.send_bytes(exact)
                self.assertEqual(c.expect(PUBACK).packet_id, 7)
                self.assertEqual(len(sub.expect(PUBLISH).payload), n)
                c.send_bytes(over)
                self.assertEqual(c.wait_closed(5), RC_PACKET_TOO_LARGE if version == 5 else None)
                self.assertEqual(c.skipped, [])
        big_connect = SourceClient(self.port)
        self.clients.append(big_connect)
        big_connect.send(encode_connect("x" * 1200))
        self.assertIsNone(big_connect.wait_closed(5))
        self.assertEqual(big_connect.skipped, [])
        self.assertEqual(sub.collect(1.0), [])
        self.assert_hit_deltas(before, {"max_packet_size": 3})

    def test_receive_maximum_counted(self):
        """[mqtt] receive_maximum = 3: three unreleased QoS 2 PUBLISHes are taken, the fourth
        gets DISCONNECT 0x93 and is counted receive_maximum."""
        self.start("[mqtt]\nreceive_maximum = 3\n")
        topic = unique("rm")
        before = self.all_hits()
        c = self.client()
        for i in range(1, 4):
            c.send_bytes(encode_publish(topic, b"x", qos=2, packet_id=i))
            self.assertEqual(c.expect(PUBREC).packet_id, i)
        c.send_bytes(encode_publish(topic, b"x", qos=2, packet_id=4))
        self.assertEqual(c.wait_closed(5), 0x93)
        self.assert_hit_deltas(before, {"receive_maximum": 1})

    def test_max_queued_messages_counted(self):
        """max_queued_messages = 5: 8 QoS 1 messages for an offline persistent session keep
        5 and count 3 dropped (messages_dropped_total{reason="queue_full"})."""
        self.start("[limits]\nmax_queued_messages = 5\n")
        cid, topic = unique("q"), unique("q")
        session = {"session_expiry_interval": 300}
        c = self.client(client_id=cid, properties=session)
        c.subscribe([(topic, 1)])
        c.disconnect()
        c.close()
        pub = self.client()
        wait_until(lambda: http_get(self.broker.http_port, f"/api/v1/clients/{cid}")[1]
                   .find(b'"connected":false') >= 0, 5, "the session offline")
        before = self.dropped()
        codes = []
        for i in range(8):
            pub.publish(topic, str(i).encode(), qos=1)
            codes.append(pub.expect(PUBACK).reason_code)
        # Queued: Success. Dropped by every matching session: 0x97 (quota exceeded), so the
        # publisher knows nobody took it.
        self.assertEqual(codes, [0] * 5 + [0x97] * 3)
        self.assertEqual(self.dropped() - before, 3)
        again = self.client(client_id=cid, clean_start=False, properties=session)
        got = again.collect(timeout=5, quiet=1.0)
        self.assertEqual([p.payload for p in got if p.type == PUBLISH],
                         [str(i).encode() for i in range(5)])
        again.disconnect()


class DropCounters(LimitTest):
    """Each drop reason of starling_messages_dropped_total moves by exactly the drops the test
    causes, and no other reason moves."""

    REASONS = ("queue_full", "expired", "too_large", "offline_qos0", "session_ended",
               "no_shared_member")

    def all_drops(self):
        return {r: self.dropped(r) for r in self.REASONS}

    def assert_drop_deltas(self, before, expected):
        after = self.all_drops()
        self.assertEqual({r: after[r] - before[r] for r in self.REASONS},
                         {r: expected.get(r, 0) for r in self.REASONS})

    def offline_session(self, topic, qos=1, **properties):
        """A persistent session subscribed to topic whose client has gone (the broker has
        seen it go: the API shows it disconnected). Returns (client id, CONNECT properties)."""
        cid = unique("drop")
        session = {"session_expiry_interval": 300, **properties}
        c = self.client(client_id=cid, properties=session)
        self.assertEqual(c.subscribe([(topic, qos)]).reason_codes, [qos])
        c.disconnect()
        c.close()
        self.wait_offline(cid)
        return cid, session

    def wait_offline(self, cid):
        wait_until(lambda: http_get(self.broker.http_port, f"/api/v1/clients/{cid}")[1]
                   .find(b'"connected":false') >= 0, 10, "the session offline")

    def test_expired_while_queued_counts_expired(self):
        """A QoS 1 message with Message Expiry Interval 1 s queued for an offline persistent
        session, then a 300 s one: when the client returns 2 s later it gets only the second,
        and expired is up by exactly 1."""
        self.start("")
        topic = unique("exp")
        cid, session = self.offline_session(topic)
        pub = self.client()
        before = self.all_drops()
        pub.publish(topic, b"short", qos=1, properties={"message_expiry_interval": 1})
        self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        pub.publish(topic, b"long", qos=1, properties={"message_expiry_interval": 300})
        self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        self.assert_drop_deltas(before, {})  # both queued, nothing dropped yet
        time.sleep(2.2)  # the first message's lifetime passes while it waits
        back = self.client(client_id=cid, clean_start=False, properties=session)
        got = back.collect(timeout=5, quiet=1.0)
        # The expired one came first in the queue: it was discarded before "long" was sent.
        self.assertEqual([p.payload for p in got if p.type == PUBLISH], [b"long"])
        self.assert_drop_deltas(before, {"expired": 1})
        back.puback(got[0].packet_id)

    def test_larger_than_receivers_maximum_packet_size_counts_too_large(self):
        """A subscriber announcing Maximum Packet Size 200 is not sent a 500-byte message, at
        QoS 0, 1 nor 2 (discarded as if sent, [MQTT-3.1.2-25]): too_large is up by exactly 3,
        the publisher's PUBACK and PUBREC say success (it was not refused: no 0x97, and the
        QoS 2 exchange goes on to PUBCOMP), and the small message after them arrives, alone."""
        self.start("")
        topic = unique("big")
        sub = self.client(properties={"maximum_packet_size": 200})
        self.assertEqual(sub.subscribe([(topic, 2)]).reason_codes, [2])
        pub = self.client()
        before = self.all_drops()
        pub.publish(topic, b"L" * 500, qos=0)
        pub.publish(topic, b"L" * 500, qos=1)
        self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        pid = pub.publish(topic, b"L" * 500, qos=2)
        self.assertEqual(pub.expect(PUBREC).reason_code, 0)
        pub.pubrel(pid)
        self.assertEqual(pub.expect(PUBCOMP).packet_id, pid)
        pub.publish(topic, b"small", qos=1)
        pub.expect(PUBACK)
        got = sub.collect(timeout=3, quiet=1.0)
        self.assertEqual([p.payload for p in got if p.type == PUBLISH], [b"small"])
        self.assert_drop_deltas(before, {"too_large": 3})

    def test_unacknowledged_message_too_large_for_the_next_connection_is_discarded(self):
        """A QoS 1 message sent but not acknowledged when its client went away is not resent
        when the client returns with a smaller Maximum Packet Size: discarded as if it had been
        sent ([MQTT-3.1.2-25]), too_large up by exactly 1. It frees its slot: with Receive
        Maximum 1 the next message arrives, and a second return resends nothing (it stayed in
        flight for ever, counted again at each return, before this was fixed)."""
        self.start("")
        topic = unique("resend")
        cid = unique("drop")
        session = {"session_expiry_interval": 300}
        first = self.client(client_id=cid, properties=session)
        self.assertEqual(first.subscribe([(topic, 1)]).reason_codes, [1])
        pub = self.client()
        pub.publish(topic, b"B" * 500, qos=1)
        pub.expect(PUBACK)
        self.assertEqual(first.expect(PUBLISH).payload, b"B" * 500)  # never acknowledged
        first.disconnect()
        first.close()
        self.wait_offline(cid)
        before = self.all_drops()
        small = {**session, "maximum_packet_size": 200, "receive_maximum": 1}
        back = self.client(client_id=cid, clean_start=False, properties=small)
        pub.publish(topic, b"small", qos=1)
        pub.expect(PUBACK)
        got = back.collect(timeout=3, quiet=1.0)
        self.assertEqual([p.payload for p in got if p.type == PUBLISH], [b"small"])
        back.puback(got[0].packet_id)
        self.assert_drop_deltas(before, {"too_large": 1})
        back.disconnect()
        back.close()
        self.wait_offline(cid)
        again = self.client(client_id=cid, clean_start=False, properties=small)
        self.assertEqual([p.payload for p in again.collect(timeout=2, quiet=1.0)
                          if p.type == PUBLISH], [])
        self.assert_drop_deltas(before, {"too_large": 1})

    def test_qos0_for_offline_session_counts_offline_qos0(self):
        """A QoS 0 message for an offline persistent session (QoS 1 subscription) is not
        queued, by default: offline_qos0 is up by exactly 1; the QoS 1 message sent after it
        is queued and is all the client gets when it returns."""
        self.start("")
        topic = unique("off")
        cid, session = self.offline_session(topic)
        pub = self.client()
        before = self.all_drops()
        pub.publish(topic, b"zero", qos=0)
        pub.publish(topic, b"one", qos=1)
        self.assertEqual(pub.expect(PUBACK).reason_code, 0)  # in order: "zero" was routed
        self.assert_drop_deltas(before, {"offline_qos0": 1})
        back = self.client(client_id=cid, clean_start=False, properties=session)
        got = back.collect(timeout=5, quiet=1.0)
        self.assertEqual([p.payload for p in got if p.type == PUBLISH], [b"one"])
        back.puback(got[0].packet_id)
        self.assert_drop_deltas(before, {"offline_qos0": 1})

    def test_queue_discarded_by_clean_start_counts_session_ended(self):
        """3 QoS 1 messages queued for an offline persistent session, then its client returns
        with Clean Start: the session and its queue end, session_ended is up by exactly 3."""
        self.start("")
        topic = unique("end")
        cid, session = self.offline_session(topic)
        pub = self.client()
        before = self.all_drops()
        for i in range(3):
            pub.publish(topic, b"q%d" % i, qos=1)
            self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        self.assert_drop_deltas(before, {})
        back = self.client(client_id=cid, clean_start=True, properties=session)
        self.assertEqual([p for p in back.collect(timeout=1, quiet=0.5) if p.type == PUBLISH], [])
        self.assert_drop_deltas(before, {"session_ended": 3})

    def test_queue_of_an_expired_session_counts_session_ended(self):
        """2 QoS 1 messages queued for an offline session with Session Expiry Interval 1 s: when
        the session expires (and the API stops showing it), session_ended is up by exactly 2."""
        self.start("")
        topic = unique("expire")
        cid, _ = self.offline_session(topic, session_expiry_interval=1)
        pub = self.client()
        before = self.all_drops()
        for i in range(2):
            pub.publish(topic, b"e%d" % i, qos=1)
            self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        wait_until(lambda: self.dropped("session_ended") - before["session_ended"] >= 2,
                   10, "the expired session's queue counted")
        self.assertEqual(http_get(self.broker.http_port, f"/api/v1/clients/{cid}")[0], 404)
        self.assert_drop_deltas(before, {"session_ended": 2})

    def test_shared_message_with_no_member_left_counts_no_shared_member(self):
        """The only member of a shared group is offline (persistent): 2 QoS 1 messages wait in
        its session. It returns with Clean Start, so its session ends and no member is left to
        take them: no_shared_member is up by exactly 2 (and session_ended not at all)."""
        self.start("")
        topic = unique("orphan")
        cid, session = self.offline_session(f"$share/solo/{topic}")
        pub = self.client()
        before = self.all_drops()
        for i in range(2):
            pub.publish(topic, b"s%d" % i, qos=1)
            self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        self.assert_drop_deltas(before, {})
        self.client(client_id=cid, clean_start=True, properties=session)
        wait_until(lambda: self.dropped("no_shared_member") - before["no_shared_member"] >= 2,
                   10, "the orphaned shared messages counted")
        self.assert_drop_deltas(before, {"no_shared_member": 2})


class ConnectTimeout(LimitTest):

    def test_no_connect_in_time_is_closed_and_counted(self):
        """connect_timeout_ms = 1000: a socket that sends nothing and one that sends half a
        CONNECT are closed without a CONNACK and counted connect_timeout; a client that
        connected in time stays connected past the timeout. With max_connections_per_address
        = 2 the two timed-out sockets held 127.0.0.3's places: closing them gives both back."""
        self.start("[limits]\nconnect_timeout_ms = 1000\nmax_connections_per_address = 2\n")
        before = self.all_hits()
        silent = SourceClient(self.port, source="127.0.0.3")
        partial = SourceClient(self.port, source="127.0.0.3")
        self.clients += [silent, partial]
        partial.send_bytes(encode_connect(unique("half"))[:8])
        ok = self.client(source="127.0.0.4")
        self.assert_refused("127.0.0.3")  # both places taken by the silent sockets
        for c in (silent, partial):
            self.assertIsNone(c.wait_closed(10))
            self.assertEqual(c.skipped, [])
        self.assert_hit_deltas(before, {"connect_timeout": 2, "max_connections_per_address": 1})
        time.sleep(1.5)  # ok has now been connected well past the connect timeout
        ok.send_bytes(PINGREQ_BYTES)
        ok.expect(PINGRESP)
        self.admitted("127.0.0.3")
        self.admitted("127.0.0.3")
        before = self.all_hits()
        self.assert_refused("127.0.0.3")
        self.assert_hit_deltas(before, {"max_connections_per_address": 1})

if __name__ == "__main__":
    unittest.main()
