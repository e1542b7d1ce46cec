"""starling-bench's counts against an independent subscriber.

A small fan-out run with a fixed number of messages per publisher (--count) while
mosquitto_sub, a client that shares no code with the bench, subscribes to the same topic:
mosquitto_sub must receive exactly what the bench says it sent, message by message (it decodes
the bench's payload header: publisher, sequence), and the bench must report every delivery to
its own subscribers, with no loss or duplicates. Also checks the bench's refusals (non-loopback
host) and that its presets are listed.

Needs STARLING_BIN (ctest sets it); starling-bench is built next to it.
"""

import json
import os
import re
import struct
import subprocess
import threading
import time
import unittest

from harness import HOST, BrokerTestCase, against_mosquitto, unique

TIMEOUT = 60
HEX = re.compile(r"(?:[0-9a-f]{2})+")


def bench_binary():
    binary = os.environ.get("STARLING_BIN")
    if not binary:
        raise RuntimeError("STARLING_BIN is not set (ctest sets it)")
    path = os.path.join(os.path.dirname(binary), "starling-bench")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is not built (cmake --build ... --target starling-bench)")
    return path


def run_bench(args, timeout=TIMEOUT):
    """Runs starling-bench with --json; returns (exit status, parsed report, stderr)."""
    proc = subprocess.run([bench_binary()] + args + ["--json", "--quiet"], capture_output=True,
                          text=True, timeout=timeout)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, report, proc.stderr


class IndependentSubscriber:
    """mosquitto_sub on one topic, printing payloads in hex, exiting after `count` messages."""

    def __init__(self, port, topic, count, qos, version):
        # stdbuf: line-buffered output through the pipe, so SUBACK is seen when it happens.
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", HOST, "-p", str(port), "-t", topic, "-q", str(qos),
             "-C", str(count), "-W", str(TIMEOUT - 10), "-F", "%x", "-d",
             "-V", "mqttv5" if version == "5" else "mqttv311",
             "-i", unique("indep")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.payloads = []
        self.debug = []
        self.subscribed = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        # With -d, debug lines are text; a payload is a line of hex digits.
        for line in self.proc.stdout:
            line = line.strip()
            if HEX.fullmatch(line):
                self.payloads.append(line)
            elif line:
                self.debug.append(line)
                if "SUBACK" in line:
                    self.subscribed.set()

    def wait(self):
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()  # only the process we started
                self.proc.wait()
        self.reader.join(timeout=5)
        return code

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        self.proc.stdout.close()


def decode(hex_payload):
    """(publisher, sequence) from the bench's payload header: u32, u64, u64 little-endian."""
    raw = bytes.fromhex(hex_payload)
    publisher, seq, _sent_ns = struct.unpack_from("<IQQ", raw)
    return publisher, seq, len(raw)


class BenchCountsTest(BrokerTestCase):
    broker_scope = "test"

    def check_against_mosquitto_sub(self, qos, version, publishers=3, subscribers=4, count=200):
        prefix = unique("bi")
        topic = f"{prefix}/fanout"
        total = publishers * count
        indep = IndependentSubscriber(self.broker.port, topic, total, qos, version)
        try:
            self.assertTrue(indep.subscribed.wait(15),
                            f"mosquitto_sub did not subscribe: {indep.debug}")
            status, report, stderr = run_bench([
                "fanout", "--port", str(self.broker.port), "--publishers", str(publishers),
                "--subscribers", str(subscribers), "--count", str(count), "--rate", "400",
                "--qos", str(qos), "--mqtt-version", version, "--payload", "48",
                "--warmup", "0", "--duration", "20", "--drain", "5",
                "--topic-prefix", prefix, "--threads", "2"])
            self.assertEqual(status, 0, f"bench failed: {report and report['error']} {stderr}")
            code = indep.wait()
        finally:
            indep.stop()
        self.assertEqual(code, 0, f"mosquitto_sub exited {code} after {len(indep.payloads)} "
                                  f"messages")

        # The independent subscriber saw exactly the messages the bench says it sent.
        seen = [decode(p) for p in indep.payloads]
        self.assertEqual(len(seen), total)
        self.assertEqual(sorted((p, s) for p, s, _ in seen),
                         [(p, s) for p in range(publishers) for s in range(count)])
        self.assertTrue(all(size == 48 for _, _, size in seen))

        # And the bench's own accounting agrees.
        self.assertTrue(report["ok"], report["error"])
        self.assertEqual(report["sent_total"], total)
        self.assertEqual(report["expected_total"], total * subscribers)
        self.assertEqual(report["received_total"], total * subscribers)
        self.assertEqual(report["lost"], 0)
        self.assertEqual(report["duplicates"], 0)
        self.assertEqual(len(report["publishers"]), publishers)
        for p in report["publishers"]:
            self.assertEqual(p["sent"], count)
            self.assertEqual(p["expected"], count * subscribers)
            self.assertEqual(p["received"], count * subscribers)
            self.assertEqual(p["lost"], 0)
        self.assertEqual(report["latency_us"]["count"], report["received"])

    def test_qos1_mqtt5_matches_mosquitto_sub(self):
        self.check_against_mosquitto_sub(qos=1, version="5")

    def test_qos2_mqtt311_matches_mosquitto_sub(self):
        self.check_against_mosquitto_sub(qos=2, version="3.1.1", publishers=2, subscribers=3,
                                         count=150)

    def test_shared_groups_receive_each_message_once(self):
        prefix = unique("bs")
        status, report, stderr = run_bench([
            "shared", "--port", str(self.broker.port), "--publishers", "2", "--groups", "2",
            "--members", "3", "--count", "300", "--rate", "600", "--qos", "1",
            "--warmup", "0", "--duration", "20", "--drain", "5", "--topic-prefix", prefix])
        self.assertEqual(status, 0, f"{report and report['error']} {stderr}")
        self.assertEqual(report["sent_total"], 600)
        self.assertEqual(report["expected_total"], 1200)  # each group gets each message once
        self.assertEqual(report["lost"], 0)
        self.assertEqual(report["duplicates"], 0)
        self.assertEqual(report["received_total"], 1200)

    @unittest.skipIf(against_mosquitto(),
                     "Mosquitto 2.0.11 drops QoS 1 messages in this pattern (it logs 'Outgoing "
                     "messages are being dropped'), see docs/benchmarks.md")
    def test_window_runs_lose_nothing(self):
        # Unlimited rate with an in-flight window, publishers and subscriber on different
        # threads, ended by the timeline (not --count): the drain must wait for the last batch
        # of every publishing thread. QoS 1, so a correct broker cannot drop anything; a few
        # repetitions because the end-of-window race this guards against is timing-dependent.
        for attempt in range(3):
            status, report, stderr = run_bench([
                "fanin", "--port", str(self.broker.port), "--publishers", "200",
                "--total-window", "200", "--qos", "1", "--warmup", "0.3", "--duration", "1",
                "--drain", "10", "--topic-prefix", unique("bw"), "--threads", "2"])
            self.assertEqual(status, 0, f"{report and report['error']} {stderr}")
            self.assertGreater(report["sent_total"], 0)
            self.assertEqual(report["lost"], 0, f"attempt {attempt}")
            self.assertEqual(report["duplicates"], 0)
            self.assertEqual(report["received_total"], report["expected_total"])
        status, report, stderr = run_bench([
            "fanout", "--port", str(self.broker.port), "--publishers", "2", "--subscribers", "10",
            "--window", "50", "--qos", "1", "--warmup", "0.3", "--duration", "1",
            "--drain", "10", "--topic-prefix", unique("bw")])
        self.assertEqual(status, 0, f"{report and report['error']} {stderr}")
        self.assertEqual(report["lost"], 0)
        self.assertEqual(report["received_total"], report["sent_total"] * 10)

    def test_retained_rounds_receive_every_message(self):
        status, report, stderr = run_bench([
            "retained", "--port", str(self.broker.port), "--retained", "300",
            "--subscribers", "4", "--qos", "1", "--warmup", "0.2", "--duration", "1",
            "--drain", "10", "--topic-prefix", unique("br")])
        self.assertEqual(status, 0, f"{report and report['error']} {stderr}")
        self.assertGreater(report["results"]["rounds"], 0)
        self.assertEqual(report["results"]["rounds_incomplete"], 0)
        self.assertEqual(report["lost"], 0)
        self.assertEqual(report["duplicates"], 0)
        self.assertEqual(report["misrouted"], 0)
        self.assertEqual(report["received_total"], report["expected_total"])
        self.assertEqual(report["received_total"] % 300, 0)

    def test_connections_are_held_and_pinged(self):
        status, report, stderr = run_bench([
            "connections", "--port", str(self.broker.port), "--connections", "300",
            "--subscribe", "--warmup", "0", "--duration", "0.5", "--drain", "10",
            "--broker-pid", str(self.broker.pid)])
        self.assertEqual(status, 0, f"{report and report['error']} {stderr}")
        self.assertEqual(report["connect"]["connected"], 300)
        self.assertEqual(report["connack_latency_us"]["count"], 300)
        self.assertEqual(report["results"]["held"], 300)
        self.assertEqual(report["latency_us"]["count"], 300)  # one PINGREQ round trip each
        self.assertGreater(report["broker_process"]["rss_baseline_kb"], 0)


class BenchCliTest(unittest.TestCase):
    def test_refuses_non_loopback_host(self):
        proc = subprocess.run([bench_binary(), "pairs", "--host", "192.0.2.1", "--port", "1883"],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("loopback", proc.stderr)

    def test_lists_presets(self):
        proc = subprocess.run([bench_binary(), "--list-presets"], capture_output=True, text=True,
                              timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0)
        for name in ("fanout-qos2", "fanin-sweep", "pairs-qos0", "connections"):
            self.assertIn(name, proc.stdout)

    def test_unknown_preset(self):
        proc = subprocess.run([bench_binary(), "--preset", "nope"], capture_output=True,
                              text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--list-presets", proc.stderr)


if __name__ == "__main__":
    unittest.main()
