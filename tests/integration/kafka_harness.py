"""Kafka side of the bridge tests: a mock Kafka cluster, kcat as producer and consumer, a Schema
Registry stub and Confluent-framed Avro encoding.

The cluster is librdkafka's mock cluster run by $STARLING_KAFKA_MOCK (tests/tools/kafka_mock.cc;
ctest sets the variable). It speaks the real Kafka protocol on loopback and takes commands on
its stdin to create topics, take brokers down, slow them or fail requests. Facts about it
(librdkafka 2.0.2) that tests depend on:

- Any Metadata request that names an unknown topic creates it with 4 partitions: the mock
  speaks Metadata only up to v2, which has no AllowAutoTopicCreation flag, so this holds for
  producers and consumers (kcat -C, -G, -L -t, the bridge) whatever allow.auto.create.topics
  says. Tests should create their topics with MockKafka.create_topic() before anything else
  names them; MockKafka.set_topic_error(name, ERR_UNKNOWN_TOPIC_OR_PART) makes one look
  missing.
- Every partition has min(3, brokers) replicas and a random leader; `down` does not move
  leaders, so use MockKafka.set_leader() before taking a broker down in a test that needs a
  given partition to be affected.
"""

import http.server
import io
import json
import os
import select
import signal
import struct
import subprocess
import tempfile
import threading
import time

from harness import BrokerTestCase

# Kafka API keys for push_errors().
API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3

# rd_kafka_resp_err_t values for push_errors().
ERR_TRANSPORT = -195  # the mock broker drops the connection instead of answering
ERR_UNKNOWN_TOPIC_OR_PART = 3
ERR_LEADER_NOT_AVAILABLE = 5
ERR_NOT_LEADER_FOR_PARTITION = 6
ERR_REQUEST_TIMED_OUT = 7
ERR_MSG_SIZE_TOO_LARGE = 10
ERR_NOT_ENOUGH_REPLICAS = 19
ERR_TOPIC_AUTHORIZATION_FAILED = 29
ERR_INVALID_RECORD = 87

KCAT = os.environ.get("STARLING_KCAT", "kcat")

# Quick reconnects after a broker comes back, and short delivery timeouts so that the
# bridge's own retries (not only librdkafka's) are exercised.
FAST_KAFKA = """
[kafka.properties]
"reconnect.backoff.ms" = 100
"reconnect.backoff.max.ms" = 500
"""


def kafka_config(bootstrap, rules, extra=""):
    """A broker config bridging to the cluster at `bootstrap` by `rules`; extra: more [kafka]
    lines (and tables of its own)."""
    return f'[kafka]\nbootstrap = "{bootstrap}"\n{extra}\n{FAST_KAFKA}\n{rules}'


class MockKafka:
    """One starling-kafka-mock process. Use as a context manager or call start()/stop().

    Each command waits for the program's answer; an `error` answer raises RuntimeError.
    """

    def __init__(self, brokers=3):
        self.brokers = brokers
        self.bootstrap = None
        self.proc = None
        self._buf = b""
        self._log = None  # its stderr (librdkafka warnings), quoted in errors

    def start(self, timeout=10.0):
        binary = os.environ.get("STARLING_KAFKA_MOCK")
        if not binary:
            raise RuntimeError("STARLING_KAFKA_MOCK is not set (ctest sets it)")
        self._buf = b""
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "--brokers", str(self.brokers)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log)
        try:
            line = self._readline(timeout)
            if not line.startswith("bootstrap "):
                raise RuntimeError(f"kafka mock said {line!r}, expected the bootstrap line")
        except Exception:
            self.stop()
            raise
        self.bootstrap = line.split(" ", 1)[1]
        return self

    def _readline(self, timeout):
        # Unbuffered reads with a deadline, so that a hung mock fails the test instead of
        # blocking it.
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"kafka mock did not answer within {timeout}s{self._stderr()}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"kafka mock exited (code {self.proc.wait()}){self._stderr()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def _stderr(self):
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return f"; its stderr: {text}" if text else ""

    def command(self, line, timeout=10.0):
        """Sends one command line (see tests/tools/kafka_mock.cc) and waits for `ok`."""
        if not self.proc or self.proc.poll() is not None:
            raise RuntimeError("kafka mock is not running")
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._readline(timeout)
        if answer != "ok":
            raise RuntimeError(f"kafka mock: {line!r} -> {answer!r}")

    def create_topic(self, name, partitions, replication=None):
        self.command(f"topic {name} {partitions}" +
                     (f" {replication}" if replication is not None else ""))

    def set_topic_error(self, topic, err):
        """Metadata answers err for the topic (0: back to normal); creates it if needed."""
        self.command(f"topicerror {topic} {err}")

    def set_leader(self, topic, partition, broker_id):
        """Moves a partition's leader (-1: leaderless); creates the topic if needed."""
        self.command(f"leader {topic} {partition} {broker_id}")

    def broker_down(self, broker_id):
        """Closes the broker's connections and refuses new ones (-1: all brokers)."""
        self.command(f"down {broker_id}")

    def broker_up(self, broker_id):
        self.command(f"up {broker_id}")

    def set_rtt(self, broker_id, ms):
        """Delays every answer of the broker by ms (0: back to normal; -1: all brokers)."""
        self.command(f"rtt {broker_id} {ms}")

    def push_errors(self, apikey, count, err):
        """The next count requests of apikey (any broker) fail with err."""
        self.command(f"errors {apikey} {count} {err}")

    def clear_errors(self, apikey):
        self.command(f"clear {apikey}")

    def stop(self, timeout=10.0):
        """Asks the mock to quit; kills it (our pid only) if it does not. Returns its code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _as_bytes(value):
    return value.encode() if isinstance(value, str) else value


def _delimiter(avoid):
    # 16 random bytes >= 0x80: never NUL, a backslash or a hex digit, which kcat's \xNN
    # parsing of -D/-K would mangle, and (checked) not inside any key or value of the run.
    while True:
        delim = bytes(0x80 | b for b in os.urandom(16))
        if not any(delim in data for data in avoid):
            return delim


def kcat_produce(bootstrap, topic, records, partition=None, timeout=30.0):
    """Produces records in order with kcat -P and returns when kcat has had them acknowledged.

    records: dicts {"key": bytes|str|None, "value": bytes|str|None, "headers": {name: value}}
    ("key" and "headers" optional; a None value is a NULL record). partition=None lets the
    partitioner choose (by key). Raises RuntimeError with kcat's stderr if kcat fails or a
    record is not delivered within timeout seconds.

    Records go through kcat's stdin split by a random -D delimiter, key and value by a random
    -K delimiter, so any bytes work (Avro, NUL, newlines). kcat takes headers only as -H
    name=value arguments for the whole run, so header names and values must not contain NUL,
    and consecutive records with the same headers share one kcat run. Two combinations kcat
    cannot produce raise ValueError: an empty (not NULL) value with a NULL key (kcat skips
    empty input), and a NULL value with an empty (not NULL) key (its -Z turns both to NULL).
    """
    runs = []  # [(headers, null_values, [(key, value)])]
    for rec in records:
        key = rec.get("key")
        key = None if key is None else _as_bytes(key)
        value = rec.get("value")
        value = None if value is None else _as_bytes(value)
        headers = tuple((_as_bytes(n), _as_bytes(v)) for n, v in (rec.get("headers") or {}).items())
        if any(b"\0" in part for header in headers for part in header):
            raise ValueError(f"kcat_produce: headers cannot contain NUL bytes: {headers!r}")
        if key is None and value == b"":
            raise ValueError("kcat_produce: kcat cannot send an empty value with a NULL key")
        if key == b"" and value is None:
            raise ValueError("kcat_produce: kcat cannot send a NULL value with an empty key")
        null = value is None  # kcat's -Z (empty means NULL) for the whole run
        if runs and runs[-1][0] == headers and runs[-1][1] == null:
            runs[-1][2].append((key, value))
        else:
            runs.append((headers, null, [(key, value)]))

    for headers, null, batch in runs:
        data = [part for kv in batch for part in kv if part]
        msg_delim = _delimiter(data)
        key_delim = _delimiter(data + [msg_delim])
        # Without the key delimiter a record has a NULL key; with -Z an empty key is NULL too,
        # and the delimiter keeps a NULL-key NULL-value record from being empty (skipped).
        stdin = b"".join((b"" if k is None and not null else (k or b"") + key_delim) +
                         (v or b"") + msg_delim for k, v in batch)
        escape = lambda d: "".join(f"\\x{b:02x}" for b in d)
        # No -q: kcat reports failed deliveries at verbosity 1. It gives up on undelivered
        # records itself (and exits 1) at message.timeout.ms.
        cmd = [KCAT, "-b", bootstrap, "-P", "-t", topic, "-D", escape(msg_delim),
               "-K", escape(key_delim), "-X", f"message.timeout.ms={int(timeout * 1000)}"]
        if partition is not None:
            cmd += ["-p", str(partition)]
        for name, value in headers:
            cmd += ["-H", name + b"=" + value]
        if null:
            cmd += ["-Z"]
        try:
            res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout + 10)
        except subprocess.TimeoutExpired as e:  # run() has killed it (its pid only)
            raise RuntimeError(f"kcat -P did not finish: {e.stderr!r}") from None
        if res.returncode != 0:
            raise RuntimeError(f"kcat -P failed ({res.returncode}): "
                               f"{res.stderr.decode(errors='replace').strip()}")


def _latin1(text):
    return None if text is None else text.encode("latin-1")


def kcat_consume(bootstrap, topic, count, timeout=20.0, group=None, at_end=False):
    """Reads up to count records of topic from the beginning with kcat -C -J.

    Returns what arrived within timeout seconds (fewer than count if that is all there was, so
    a test asserts the length), each {"topic", "partition", "offset", "key", "value",
    "headers": {name: value}} with key, value and header values as bytes (None for NULL).
    at_end=True stops at the current end of every partition (-e) instead of waiting for more.
    group: read as that consumer group (kcat -G): from the beginning the first time, from the
    group's committed offsets after that (kcat commits what it printed when it exits). Joining
    takes about 3.5 s (the mock's initial rebalance delay is 3 s), rejoining a group whose
    last member left about 5 s.

    Why -J and latin-1: kcat 1.7.1 writes the JSON envelope with yajl without UTF-8
    validation, so payload, key and header bytes >= 0x80 come out raw and only '"', '\\' and
    control bytes are escaped (\\u00XX). Decoding kcat's output as latin-1 maps every byte to
    one code point, and encoding the parsed strings back to latin-1 restores the exact bytes
    (valid UTF-8 included). A -f format string would give lengths for key and value but only an
    ambiguous "n=v,n=v" for headers.
    """
    cmd = [KCAT, "-b", bootstrap, "-J", "-q", "-u", "-c", str(count)]
    if group:
        # kcat -G would apply -o to every assignment, ignoring the group's committed offsets.
        # The mock cluster waits session.timeout.ms - 1 s for departed members before it
        # rebalances, so the next run of a group would wait 44 s with the default of 45 s.
        cmd += ["-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000",
                "-X", "heartbeat.interval.ms=1000", "-G", group, topic]
    else:
        cmd += ["-o", "beginning", "-C", "-t", topic]
    if at_end:
        cmd += ["-e"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = []
    buf = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    try:
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break  # kcat exited: -c reached, -e at the end, or an error (checked below)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line:
                    out.append(_record(json.loads(line.decode("latin-1"))))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # our kcat only, by its pid
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stdout.close()
        proc.stderr.close()
    # Killed at the deadline (< 0) is normal; kcat's own failure (e.g. unknown topic) is not.
    if proc.returncode > 0 and len(out) < count:
        raise RuntimeError(f"kcat -C failed ({proc.returncode}): {err}")
    return out[:count]


def _record(env):
    names_values = env.get("headers") or []  # kcat: a flat [name, value, name, value, ...]
    return {
        "topic": env["topic"],
        "partition": env["partition"],
        "offset": env["offset"],
        "key": _latin1(env.get("key")),
        "value": _latin1(env.get("payload")),
        "headers": {names_values[i].encode("latin-1").decode(errors="replace"):
                    _latin1(names_values[i + 1]) for i in range(0, len(names_values), 2)},
    }


class SchemaRegistryStub:
    """A Confluent Schema Registry that only knows GET /schemas/ids/<id>.

    register(id, schema_json) adds a schema; .requests counts GETs per id (unknown ids too), so
    a test can check that the bridge caches schemas. .url is "http://127.0.0.1:<port>".
    """

    def __init__(self):
        self.schemas = {}
        self.requests = {}
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        self.url = None

    def register(self, schema_id, schema_json):
        with self._lock:
            self.schemas[int(schema_id)] = schema_json

    def start(self):
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real registry behind a client

            def do_GET(self):
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                schema_id = None
                if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
                    schema_id = int(parts[2])
                with stub._lock:
                    if schema_id is not None:
                        stub.requests[schema_id] = stub.requests.get(schema_id, 0) + 1
                    schema = stub.schemas.get(schema_id)
                if schema is not None:
                    self._send(200, {"schema": schema})
                elif schema_id is not None:
                    self._send(404, {"error_code": 40403, "message": "Schema not found"})
                else:
                    self._send(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass  # no noise in the test output

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def avro_confluent_encode(schema_json, schema_id, record):
    """Confluent wire format: magic byte 0, the schema id (4 bytes big-endian), Avro binary."""
    import avro.io
    import avro.schema
    schema = avro.schema.parse(schema_json)
    body = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(body))
    return b"\0" + struct.pack(">I", schema_id) + body.getvalue()


def broker_metrics(broker):
    """The broker's /metrics parsed with prometheus_client's parser: {key: value}, where key is
    the sample name followed by ",label=value" for each label in name order
    ("starling_kafka_consumer_lag,group=g,rule=0")."""
    from prometheus_client.parser import text_string_to_metric_families
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items()))
            values[key] = s.value
    return values


def wait_metric(broker, key, predicate, timeout=30.0):
    """Polls /metrics until predicate(value of key) holds; returns the value. Raises
    AssertionError naming the last value otherwise (the broker's state, not a timing claim)."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = broker_metrics(broker).get(key)
        if value is not None and predicate(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"{key} = {value} did not reach the expected value")


class KafkaTestCase(BrokerTestCase):
    """A mock cluster of kafka_brokers brokers for each test (self.kafka, stopped by pid at its
    end); the test starts the brokers it bridges to it with kafka_broker()."""

    broker_scope = None
    kafka_brokers = 3

    def setUp(self):
        super().setUp()
        self.kafka = MockKafka(brokers=self.kafka_brokers).start()
        self.addCleanup(self.kafka.stop)

    def kafka_broker(self, rules, extra="", **broker_args):
        """A started broker (HTTP on, for /metrics) bridged to self.kafka by `rules`."""
        return self.new_broker(config_text=kafka_config(self.kafka.bootstrap, rules, extra),
                               http=True, **broker_args)
