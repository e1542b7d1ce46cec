"""Starts a broker on a free loopback port for one test and stops it by pid.

The broker under test is the built Starling ($STARLING_BIN). Setting STARLING_TEST_BROKER=mosquitto
runs the same tests against Debian's Mosquitto instead, which is how we check that a test
describes the spec and not our own implementation.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from mqtt_raw import RawClient

HOST = "127.0.0.1"

# CI (the CI service sets CI; .ci/run sets it too): scripts/deps.sh installs every tool the
# tests use, so a test that skips for a missing tool hides a gap instead of testing it.
IN_CI = bool(os.environ.get("CI"))


class SkipAccountingResult(unittest.TextTestResult):
    """Writes every skip to $STARLING_SKIP_LOG (scripts/test.sh counts them) and, in CI, records
    it as a failure. Installed below as unittest's default result class: every test file imports
    this module and ends with unittest.main(), so no file can forget it."""

    def addSkip(self, test, reason):
        log = os.environ.get("STARLING_SKIP_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{test.id()}: {reason}\n")
        if IN_CI:
            failure = AssertionError(f"skipped in CI, where every tool is installed: {reason}")
            self.addFailure(test, (AssertionError, failure, None))
        else:
            super().addSkip(test, reason)


unittest.TextTestRunner.resultclass = SkipAccountingResult

# What a sanitizer (ASan, UBSan, LeakSanitizer; scripts/test.sh's build) writes when it finds
# something. UBSan's "runtime error:" is also fatal there (-fno-sanitize-recover).
SANITIZER_REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error: |"
    r"SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)")


def check_no_sanitizer_report(output, what="the broker"):
    """AssertionError quoting the report when a sanitizer wrote one in `output` (str or bytes)."""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    found = SANITIZER_REPORT.search(output)
    if found:
        start = max(0, output.rfind("\n", 0, max(0, found.start() - 200)))
        raise AssertionError(f"a sanitizer report in the output of {what}:\n"
                             f"{output[start:start + 6000]}")


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


# Ports handed to this process, each with an open file whose flock reserves it against the other
# test processes ctest runs in parallel (the lock lasts as long as this process).
_reserved_ports = {}
_PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "starling-test-ports")


@atexit.register
def _release_ports():
    for lock in _reserved_ports.values():
        lock.close()


def free_port():
    """A loopback TCP port nobody listens on, for a server a test starts.

    Not one the kernel picks for port 0: those come from the ephemeral range, which every outgoing
    connection (any client of any parallel test) also draws from, so one could take the port
    before the server binds it ("Address already in use", seen in CI). Ports below that range
    are only ever taken by a bind() to that port, and the flock keeps parallel tests apart."""
    import fcntl
    import random
    low, _ = _ephemeral_range()
    first, last = (10000, low - 1) if low > 12000 else (61000, 65535)
    os.makedirs(_PORT_LOCK_DIR, exist_ok=True)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        port = rng.randint(first, last)
        if port in _reserved_ports:
            continue
        lock = open(os.path.join(_PORT_LOCK_DIR, str(port)), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((HOST, port))
        except OSError:
            lock.close()
            continue
        _reserved_ports[port] = lock
        return port
    raise RuntimeError(f"no free loopback port in {first}-{last}")


def wait_for_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"broker did not listen on {port} within {timeout}s")


def against_mosquitto():
    return os.environ.get("STARLING_TEST_BROKER") == "mosquitto"


def against_cluster():
    """STARLING_TEST_BROKER=cluster: every Broker() is a three-node Starling cluster behind
    HAProxy (cluster_harness.BalancedCluster), so a suite checks that a cluster is one broker
    to its clients."""
    return os.environ.get("STARLING_TEST_BROKER") == "cluster"


class Lifecycle:
    """start()/stop() as a context manager; cleanup() also removes self.tmp."""

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Broker(Lifecycle):
    """One broker process. Use as a context manager or call start()/stop()."""

    def __new__(cls, *args, **kwargs):
        if cls is Broker and against_cluster():
            from cluster_harness import BalancedCluster
            return BalancedCluster(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, config_text=None, extra_args=None, threads=2, data_dir=None,
                 mosquitto_config="", http=False, env=None, listener_ports=()):
        self.config_text = config_text
        # Extra mosquitto.conf lines (e.g. "max_packet_size 1000\n") so that a test needing a
        # Starling limit can set Mosquitto's equivalent and still run against it.
        self.mosquitto_config = mosquitto_config
        self.extra_args = list(extra_args or [])
        self.env = env  # extra environment variables for the broker process
        self.threads = threads
        self.port = free_port()
        # http=True: the HTTP API on its own free port (b.http_port); off by default.
        self.http_port = free_port() if http else None
        # The ports of more listeners the config declares: start() waits for them too.
        self.listener_ports = list(listener_ports)
        self.tmp = tempfile.mkdtemp(prefix="starling-test-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "broker.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self):
        if against_mosquitto():
            conf = os.path.join(self.tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {self.port} {HOST}\nallow_anonymous true\n"
                        "max_queued_messages 10000\n")
                f.write(self.mosquitto_config)
            return ["mosquitto", "-c", conf]
        binary = os.environ.get("STARLING_BIN")
        if not binary:
            raise RuntimeError("STARLING_BIN is not set (ctest sets it)")
        http = f"{HOST}:{self.http_port}" if self.http_port else "off"
        cmd = [binary, "--bind", f"{HOST}:{self.port}", "--http", http,
               "--data", self.data_dir, "--threads", str(self.threads),
               "--log-level", os.environ.get("STARLING_TEST_LOG_LEVEL", "info")]
        if self.config_text is not None:
            conf = os.path.join(self.tmp, "starling.toml")
            with open(conf, "w") as f:
                f.write(self.config_text)
            cmd += ["--config", conf]
        return cmd + self.extra_args

    def start(self):
        log = open(self.log_path, "ab")
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        log.close()
        try:
            wait_for_port(self.port, self.proc)
            for port in ([self.http_port] if self.http_port else []) + self.listener_ports:
                wait_for_port(port, self.proc)
        except RuntimeError as e:
            # Never leave a broker behind that a failed setUp/setUpClass cannot stop.
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise RuntimeError(f"{e}; its log ends:\n{self.log()[-3000:]}") from None
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Stops the broker we started (by its pid) and returns its exit code.

        Its end is part of every test: AssertionError when it had died on its own before being
        stopped, did not exit 0 after SIGTERM/SIGINT (within `timeout`, a hang and not a
        speed limit), or when a sanitizer reported anything in its output."""
        if not self.proc:
            return None
        problem = None
        if self.proc.poll() is not None:
            problem = f"it had exited by itself with code {self.proc.returncode}"
        else:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problem = f"it did not exit within {timeout}s of {signal.Signals(sig).name}"
        code = self.proc.returncode
        self.proc = None
        if problem is None and sig in (signal.SIGTERM, signal.SIGINT) and code != 0:
            problem = f"exit code {code} after {signal.Signals(sig).name}, not 0"
        if problem:
            raise AssertionError(f"broker on port {self.port}: {problem}; its log ends:\n"
                                 f"{self.log()[-6000:]}")
        check_no_sanitizer_report(self.log(), f"the broker on port {self.port}")
        return code

    def kill9(self):
        return self.stop(sig=signal.SIGKILL)

    def settle(self, timeout=30.0):
        """Waits until what the broker acknowledged has reached every receiver's session: at
        once for one broker (a cluster forwards after acknowledging: BalancedCluster.settle)."""

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------------
# Helpers for the paho-based tests (subscribe, retained, will, session, shared, $SYS).

import itertools as _itertools
import queue as _queue
import threading as _threading
import uuid as _uuid

_unique_counter = _itertools.count(1)


def unique(prefix="t"):
    """A name (client id, topic level) that no other test or earlier run uses."""
    return f"{prefix}-{os.getpid()}-{next(_unique_counter)}-{_uuid.uuid4().hex[:6]}"


def reason_value(code):
    """An int from a paho ReasonCodes object or an int."""
    return code if isinstance(code, int) else code.value


class MqttClient:
    """A paho-mqtt client driven synchronously: each call waits for the broker's answer.

    Received PUBLISHes (paho MQTTMessage objects: topic, payload, qos, retain, dup, properties)
    are queued; get()/collect()/drain()/expect_nothing() read them.
    """

    def __init__(self, port, version=5, client_id=None, clean=True, session_expiry=None,
                 keepalive=60, connect_properties=None):
        import paho.mqtt.client as mqtt
        self._mqtt = mqtt
        self.port = port
        self.version = version
        self.client_id = client_id if client_id is not None else unique("c")
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.connect_properties = connect_properties
        kwargs = {} if version == 5 else {"clean_session": clean}
        self.client = mqtt.Client(client_id=self.client_id,
                                  protocol=mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311,
                                  reconnect_on_failure=False, **kwargs)
        self.messages = _queue.Queue()
        self._cond = _threading.Condition()
        self._acks = {}             # mid -> SUBACK/UNSUBACK reason codes
        self._connack = None        # (session_present, reason code)
        self.disconnect_reason = None  # reason code of a DISCONNECT from the broker (5.0)
        self.disconnected = _threading.Event()
        self._looping = False
        c = self.client
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_unsubscribe
        c.on_message = lambda _c, _u, msg: self.messages.put(msg)
        c.on_disconnect = self._on_disconnect

    # -- callbacks (paho's network thread) --
    def _on_connect(self, _c, _u, flags, rc, properties=None):
        with self._cond:
            self._connack = (int(flags.get("session present", 0)), reason_value(rc))
            self.connack_properties = properties
            self._cond.notify_all()

    def _on_subscribe(self, _c, _u, mid, codes, properties=None):
        with self._cond:
            self._acks[mid] = [reason_value(x) for x in codes]
            self._cond.notify_all()

    def _on_unsubscribe(self, _c, _u, mid, properties=None, codes=None):
        with self._cond:
            if codes is None:
                codes = []
            elif not isinstance(codes, list):
                codes = [codes]
            self._acks[mid] = [reason_value(x) for x in codes]
            self._cond.notify_all()

    def _on_disconnect(self, _c, _u, rc, properties=None):
        if self.version == 5 and rc is not None and not isinstance(rc, int):
            self.disconnect_reason = rc.value
        self.disconnected.set()

    def _wait(self, predicate, timeout, what):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"{self.client_id}: no {what} within {timeout}s")

    # -- connection --
    def will_set(self, topic, payload=None, qos=0, retain=False, properties=None):
        self.client.will_set(topic, payload, qos, retain, properties)
        return self

    def connect(self, timeout=5.0, expect_rc=0):
        """Connects and waits for CONNACK; returns session present (0/1)."""
        props = self.connect_properties
        if self.version == 5 and self.session_expiry is not None:
            if props is None:
                props = self.properties("CONNECT")
            props.SessionExpiryInterval = self.session_expiry
        self._connack = None
        self.disconnected.clear()
        if self.version == 5:
            self.client.connect(HOST, self.port, self.keepalive, clean_start=self.clean,
                                properties=props)
        else:
            self.client.connect(HOST, self.port, self.keepalive)
        self.client.loop_start()
        self._looping = True
        self._wait(lambda: self._connack is not None, timeout, "CONNACK")
        if expect_rc is not None and self._connack[1] != expect_rc:
            raise AssertionError(f"CONNACK reason {self._connack[1]:#x}, expected {expect_rc:#x}")
        return self._connack[0]

    @property
    def session_present(self):
        return self._connack[0] if self._connack else None

    @staticmethod
    def properties(packet):
        """An empty paho Properties for a packet type name: "PUBLISH", "WILLMESSAGE", ..."""
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes
        return Properties(getattr(PacketTypes, packet))

    def disconnect(self, reason=None, properties=None, timeout=5.0):
        """A normal DISCONNECT (5.0: with the given reason code), then stops the network loop."""
        if self._looping:
            rc = None
            if reason is not None:
                from paho.mqtt.reasoncodes import ReasonCodes
                from paho.mqtt.packettypes import PacketTypes
                rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reason)
            self.client.disconnect(reasoncode=rc, properties=properties)
            self.disconnected.wait(timeout)
            self._stop_loop()

    def drop(self, timeout=5.0):
        """Loses the connection without DISCONNECT (the broker sees the socket close)."""
        if self._looping:
            sock = self.client.socket()
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.disconnected.wait(timeout)
            self._stop_loop()

    def _stop_loop(self):
        self.client.loop_stop()
        self._looping = False
        try:
            sock = self.client.socket()
            if sock is not None:
                sock.close()
        except OSError:
            pass

    def close(self):
        """Idempotent cleanup for tearDown/finally."""
        try:
            self.disconnect(timeout=2.0)
        except Exception:
            self._stop_loop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- operations --
    def subscribe(self, topic, qos=0, options=None, sub_id=None, properties=None, timeout=5.0):
        """SUBSCRIBE and wait for SUBACK; returns the list of reason codes / granted QoS.

        topic: a filter (with qos or 5.0 options) or a list of (filter, qos-or-options).
        """
        if sub_id is not None:
            properties = properties or self.properties("SUBSCRIBE")
            properties.SubscriptionIdentifier = sub_id
        if isinstance(topic, list):
            rc, mid = self.client.subscribe(topic, properties=properties)
        elif options is not None:
            rc, mid = self.client.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.client.subscribe(topic, qos, properties=properties)
        if rc != 0:
            raise AssertionError(f"subscribe not sent: rc {rc}")
        self._wait(lambda: mid in self._acks, timeout, "SUBACK")
        return self._acks.pop(mid)

    def unsubscribe(self, topic, timeout=5.0):
        """UNSUBSCRIBE and wait for UNSUBACK; returns its reason codes (5.0) or []."""
        rc, mid = self.client.unsubscribe(topic)
        if rc != 0:
            raise AssertionError(f"unsubscribe not sent: rc {rc}")
        self._wait(lambda: mid in self._acks, timeout, "UNSUBACK")
        return self._acks.pop(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, timeout=5.0):
        """PUBLISH and wait until it is written (QoS 0) or acknowledged (PUBACK/PUBCOMP)."""
        info = self.client.publish(topic, payload, qos, retain, properties)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise AssertionError(f"publish to {topic} not completed within {timeout}s")
        return info

    # -- received messages --
    def get(self, timeout=5.0):
        try:
            return self.messages.get(timeout=timeout)
        except _queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {timeout}s") from None

    def collect(self, n, timeout=5.0):
        """Exactly the next n messages (fails if fewer arrive within timeout)."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(left, 0.001)))
            except _queue.Empty:
                raise AssertionError(
                    f"{self.client_id}: got {len(out)} of {n} messages within {timeout}s: "
                    f"{[(m.topic, m.payload) for m in out][:20]}") from None
        return out

    def drain(self, wait=1.0):
        """Every message that arrives within `wait` seconds of silence."""
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=wait))
            except _queue.Empty:
                return out

    def expect_nothing(self, wait=1.0):
        got = self.drain(wait)
        if got:
            raise AssertionError(f"{self.client_id}: unexpected messages "
                                 f"{[(m.topic, m.payload, m.retain) for m in got][:20]}")


def user_properties(msg):
    """The user properties of a received 5.0 message as a list of (name, value)."""
    props = getattr(msg, "properties", None)
    return list(getattr(props, "UserProperty", []) or []) if props else []


def subscription_ids(msg):
    props = getattr(msg, "properties", None)
    return sorted(getattr(props, "SubscriptionIdentifier", []) or []) if props else []


class BrokerTestCase(unittest.TestCase):
    """The base of the tests that talk to a broker. It starts the broker and ends it (by pid,
    its files removed) and every client opened with raw_client()/paho_client(), however the
    test or its setUp ends.

    broker_scope says which broker it starts: "class" (the default) one for every test of the
    class, in setUpClass; "test" a fresh one in each setUp; None none (tests then start their
    own with new_broker()). Either way the broker is Broker(config_text=broker_config,
    mosquitto_config=mosquitto_config, **broker_args), kept with its ports as self.broker,
    self.port and self.http_port. A class whose config is made at run time (free ports,
    certificates) sets these attributes in setUpClass/setUp before calling super()'s;
    prepare_broker() can write files into the broker's directory before it starts.

    A class that overrides setUp/tearDown must call super()'s. A mixin of tests shared by two
    classes stays a plain class (not a TestCase), as before: Mixin, BrokerTestCase."""

    broker_scope = "class"
    broker_config = None    # Starling's TOML (None: its defaults)
    mosquitto_config = ""   # the same as mosquitto.conf lines (STARLING_TEST_BROKER=mosquitto)
    broker_args = {}        # more Broker() arguments: http=True, threads=1, listener_ports=...
    VERSION = 5             # the MQTT protocol level of raw_client()/paho_client() (4: 3.1.1)

    @classmethod
    def prepare_broker(cls, broker):
        """Called with the broker before it starts (broker.tmp exists)."""

    @staticmethod
    def _start_broker(owner, add_cleanup):
        """Starts the broker of `owner` (the class or the test) from its attributes."""
        broker = Broker(config_text=owner.broker_config,
                        mosquitto_config=owner.mosquitto_config, **owner.broker_args)
        add_cleanup(broker.cleanup)  # registered first, so it also runs if start() fails
        owner.prepare_broker(broker)
        owner.broker = broker.start()
        owner.port, owner.http_port = broker.port, broker.http_port

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.broker_scope == "class":
            cls._start_broker(cls, cls.addClassCleanup)

    def setUp(self):
        super().setUp()
        if self.broker_scope == "test":
            self._start_broker(self, self.addCleanup)

    def new_broker(self, start=True, **broker_args):
        """A Broker(**broker_args) of this test alone, stopped by pid (and its files removed)
        when the test ends; started unless start=False."""
        broker = Broker(**broker_args)
        self.addCleanup(broker.cleanup)
        return broker.start() if start else broker

    def raw_client(self, version=None, client_id=None, connect=True, port=None, **connect_args):
        """A mqtt_raw.RawClient closed when the test ends; connected unless connect=False, with
        CONNACK reason 0 asserted (the CONNACK is kept as self.connack)."""
        c = RawClient(port or self.port, version or self.VERSION)
        self.addCleanup(c.close)
        if connect:
            self.connack = c.connect(client_id or unique("raw"), **connect_args)
            self.assertEqual(self.connack.reason_code, 0, self.connack)
        return c

    def paho_client(self, version=None, connect=True, port=None, **client_args):
        """An MqttClient (paho) closed when the test ends; connected (CONNACK 0) unless
        connect=False. client_args: client_id, clean, session_expiry, ..."""
        c = MqttClient(port or self.port, version=version or self.VERSION, **client_args)
        self.addCleanup(c.close)
        if connect:
            c.connect()
        return c


# ---------------------------------------------------------------------------------------------
# Small helpers for tests that read the broker's HTTP API, /metrics and memory use.

def http_get(port, path, timeout=5.0):
    """GET path on the broker's HTTP port (b.http_port): (status, body bytes)."""
    import http.client
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def scrape_metrics(http_port):
    """/metrics as {(name, ((label, value), ...)): float}, labels sorted."""
    import re
    status, body = http_get(http_port, "/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}: {body[:200]!r}")
    out = {}
    sample = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
    label = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in body.decode().splitlines():
        m = sample.match(line)
        if not m or line.startswith("#"):
            continue
        labels = tuple(sorted(label.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(http_port, name, **labels):
    """One sample of /metrics (e.g. metric(p, "starling_limit_hits_total", limit="slow_client"));
    AssertionError if the broker does not export it."""
    key = (name, tuple(sorted(labels.items())))
    samples = scrape_metrics(http_port)
    if key not in samples:
        raise AssertionError(f"/metrics has no sample {name}{labels}")
    return samples[key]


def dashboard_queries():
    """The PromQL expressions of the panels of docs/grafana-dashboard.json."""
    import json
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                        "grafana-dashboard.json")
    with open(path) as f:
        dashboard = json.load(f)
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def series_in(queries, prefix="starling_"):
    """The metric names starting with prefix that the queries use."""
    return {m for q in queries for m in re.findall(re.escape(prefix) + r"[a-z0-9_]+", q)}


def exported_series(metrics_text):
    """Every sample name of a /metrics text, read with prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families
    return {s.name for f in text_string_to_metric_families(metrics_text) for s in f.samples}


def rss_mb(pid):
    """The resident set size of a process (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for pid {pid}")


def sanitized(pid):
    """True when the process runs under AddressSanitizer (scripts/test.sh's build): its
    allocator keeps freed memory in quarantine, so RSS says little about the broker's own use."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def wait_until(predicate, timeout, what, interval=0.1):
    """Polls predicate() until it returns a true value (returned); AssertionError naming `what`
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(interval)
