"""starling-bench reports a broker that loses, duplicates or reorders messages as doing so.

Between the bench and a real broker sits a small MQTT-aware proxy (stdlib only). It forwards
client-to-broker bytes untouched and parses the broker-to-client stream into packets, and on
each connection it drops (or duplicates, or swaps with the next one) every Nth PUBLISH. The
counts are per connection and the bench sends a fixed number of messages (--count), so the
expected loss is exact whatever the timing: a subscriber that should get C messages gets
C - floor(C / N) of them.

Needs STARLING_BIN (ctest sets it); starling-bench is built next to it.
"""

import os
import select
import socket
import threading
import unittest

from harness import HOST, BrokerTestCase, unique
from test_bench_counts import run_bench

PUBLISH = 3


class MangleProxy:
    """Forwards TCP on a loopback port to the broker, altering the broker's PUBLISH packets.

    mode: "drop" drops every nth PUBLISH of a connection, "dup" sends every nth twice, "swap"
    holds the PUBLISH numbered 1, n+1, 2n+1, ... and sends it right after the next one.
    """

    def __init__(self, broker_port, mode, n):
        self.broker_port = broker_port
        self.mode = mode
        self.n = n
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.lock = threading.Lock()
        self.altered = 0  # PUBLISH packets dropped / duplicated / swapped, over all connections
        self.threads = []
        self.sockets = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.broker_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.sockets += [client, upstream]
            t = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, client, upstream):
        from_broker = bytearray()
        publishes = 0
        held = None
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                if self.stopping:
                    return
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is client:
                        upstream.sendall(data)
                        continue
                    from_broker += data
                    out = bytearray()
                    for packet in self._packets(from_broker):
                        if packet[0] >> 4 != PUBLISH:
                            out += packet
                            continue
                        publishes += 1
                        if self.mode == "drop" and publishes % self.n == 0:
                            self._count()
                        elif self.mode == "dup" and publishes % self.n == 0:
                            self._count()
                            out += packet + packet
                        elif self.mode == "swap" and publishes % self.n == 1:
                            self._count()
                            held = packet
                        else:
                            out += packet
                            if held is not None:
                                out += held
                                held = None
                    if out:
                        client.sendall(out)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def _count(self):
        with self.lock:
            self.altered += 1

    @staticmethod
    def _packets(buf):
        """Whole MQTT packets from the front of buf (consumed); a partial one stays."""
        packets = []
        while len(buf) >= 2:
            length, multiplier, i = 0, 1, 1
            while True:
                if i >= len(buf):
                    return packets
                byte = buf[i]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                i += 1
                if not byte & 0x80:
                    break
            if len(buf) < i + length:
                return packets
            packets.append(bytes(buf[:i + length]))
            del buf[:i + length]
        return packets

    def close(self):
        self.stopping = True
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(timeout=5)


class BenchLossTest(BrokerTestCase):
    PUBLISHERS = 2
    SUBSCRIBERS = 3
    COUNT = 200  # per publisher; each subscriber gets PUBLISHERS * COUNT on its connection

    broker_scope = "test"

    def run_through(self, mode, n, extra=()):
        proxy = MangleProxy(self.broker.port, mode, n)
        try:
            status, report, stderr = run_bench([
                "fanout", "--port", str(proxy.port), "--publishers", str(self.PUBLISHERS),
                "--subscribers", str(self.SUBSCRIBERS), "--count", str(self.COUNT),
                "--rate", "400", "--qos", "0", "--warmup", "0", "--duration", "10",
                "--drain", "2", "--topic-prefix", unique("bl")] + list(extra))
        finally:
            proxy.close()
        self.assertIsNotNone(report, stderr)
        self.assertTrue(report["ok"], report["error"])
        self.assertEqual(status, 0)
        per_sub = self.PUBLISHERS * self.COUNT
        self.assertEqual(report["sent_total"], per_sub)
        self.assertEqual(report["expected_total"], per_sub * self.SUBSCRIBERS)
        # Every subscriber's connection saw per_sub PUBLISHes, so the proxy's count is exact.
        self.assertEqual(proxy.altered, (per_sub // n if mode != "swap" else
                                         (per_sub + n - 1) // n) * self.SUBSCRIBERS)
        return report, proxy.altered

    def test_dropped_messages_are_reported_lost(self):
        report, dropped = self.run_through("drop", 10)
        self.assertEqual(dropped, 40 * self.SUBSCRIBERS)
        self.assertEqual(report["lost"], dropped)
        self.assertEqual(report["received_total"], report["expected_total"] - dropped)
        self.assertEqual(report["duplicates"], 0)
        # Per publisher: the drops fall on both publishers' messages, summing to the total.
        self.assertEqual(sum(p["lost"] for p in report["publishers"]), dropped)
        for p in report["publishers"]:
            self.assertEqual(p["received"] + p["lost"], p["expected"])

    def test_dropped_messages_are_reported_lost_mqtt311(self):
        report, dropped = self.run_through("drop", 7, ["--mqtt-version", "3.1.1"])
        self.assertEqual(report["lost"], dropped)

    def test_duplicated_messages_are_reported(self):
        report, duplicated = self.run_through("dup", 9)
        self.assertEqual(report["duplicates"], duplicated)
        self.assertEqual(report["lost"], 0)
        self.assertEqual(report["received_total"], report["expected_total"])
        self.assertEqual(sum(p["duplicates"] for p in report["publishers"]), duplicated)

    def test_reordering_within_one_stream_is_exact(self):
        # One publisher: every swap reorders two messages of the same stream.
        self.PUBLISHERS = 1
        report, swapped = self.run_through("swap", 5)
        self.assertEqual(report["out_of_order"], swapped)
        self.assertEqual(report["lost"], 0)


if __name__ == "__main__":
    unittest.main()
