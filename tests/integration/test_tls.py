"""MQTT over TLS through real sockets: TLS listeners with mosquitto_pub/_sub (--cafile) and paho
(tls_set) on 5.0 and 3.1.1; server verification failing on the client with the wrong CA; a
plain-TCP client on a TLS port (dropped, counted in starling_handshake_failures_total{layer=
"tls"}); mutual TLS (no certificate, another CA's, expired, not yet valid, good); the client
certificate's CN as the user name (proved through an ACL and a password file that refuse
anonymous clients); tls_min_version 1.3; TLS 1.3 cipher suites; the certificate reload on
SIGHUP (new connections see the new certificate, existing ones stay up); bad TLS settings
failing at start with "file:line: reason".

The PKI is made per class by tls_certs.make_pki (a throwaway CA, server certificate for
127.0.0.1, client certificates). Raw MQTT over TLS uses mqtt_raw.RawClient on an ssl socket so
CONNACK codes are checked exactly.
"""

import os
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import warnings

from harness import HOST, BrokerTestCase, MqttClient, free_port, unique
from mqtt_raw import (CONNACK, PINGRESP, PUBLISH, ConnectionClosed, RawClient, encode_connect)
from test_auth import (assert_metric_deltas, key, metrics, run_until_exit, sighup,
                       starling_passwd, write)
from test_bench_counts import run_bench
from tls_certs import make_leaf, make_pki

RC_NOT_AUTHORIZED = 0x87
HAVE_MOSQUITTO_CLIENTS = all(shutil.which(x) for x in ("mosquitto_pub", "mosquitto_sub",
                                                        "stdbuf"))
TLS_FAILURES = key("starling_handshake_failures_total", layer="tls")


# ---------------------------------------------------------------------------------------------
# Helpers

def client_context(ca, cert=None, key_file=None, max_version=None, alpn=None):
    """A verifying client context (hostname checked against the IP SAN 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key_file)
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TlsRaw(RawClient):
    """mqtt_raw.RawClient over TLS. The handshake runs in the constructor (ssl.SSLError when it
    fails); a TLS alert later (e.g. the server refusing our certificate after a TLS 1.3
    handshake) shows as ConnectionClosed, with the alert in self.tls_error."""

    def __init__(self, port, ctx, version=5, server_hostname="127.0.0.1", timeout=5.0):
        self.version = version
        self.buf = bytearray()
        self.next_id = 0
        self.closed = False
        self.tls_error = None
        raw = socket.create_connection((HOST, port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise

    def _read_more(self, deadline):
        try:
            return super()._read_more(deadline)
        except ssl.SSLError as e:
            self.tls_error = e
            self.closed = True
            raise ConnectionClosed(f"TLS error: {e}") from None

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)


def mqtt_over_tls(port, ctx, version=5, client_id=None, username=None, password=None):
    """Tries TLS + CONNECT. Returns ("connack", reason code, client), or ("handshake", error)
    when the TLS handshake fails, or ("closed", error) when the broker ends the connection
    before any CONNACK (a TLS alert or a plain close)."""
    try:
        c = TlsRaw(port, ctx, version)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return ("handshake", e)
    try:
        c.send(encode_connect(client_id or unique("tls"), version, username=username,
                              password=password))
        p = c.recv_packet(5)
    except (ConnectionClosed, ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        c.close()
        return ("closed", e)
    if p is None:
        c.close()
        raise AssertionError("no CONNACK and no close within 5s")
    if p.type != CONNACK:
        c.close()
        raise AssertionError(f"expected CONNACK, got {p!r}")
    return ("connack", p.reason_code, c)


def quietly(f, *args, **kw):
    """Calls f without DeprecationWarnings: paho 1.6's tls_set uses ssl.PROTOCOL_TLS,
    deprecated since python 3.10, which is not what these tests are about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return f(*args, **kw)


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def listener(name, port, **settings):
    """A [listeners.NAME] table; values are TOML-encoded (strings, bools, ints, lists of
    strings)."""
    lines = [f"[listeners.{name}]", f'bind = "{HOST}:{port}"']
    for k, v in settings.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, str):
            v = f'"{v}"'
        elif isinstance(v, (list, tuple)):
            v = "[" + ", ".join(f'"{x}"' for x in v) + "]"
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"



def class_pki(cls):
    """A throwaway PKI for a test class (cls.pki, its files in cls.pkidir), removed once the
    class's broker has stopped (its cleanup is registered before the broker's)."""
    cls.pkidir = tempfile.mkdtemp(prefix="starling-pki-")
    cls.addClassCleanup(shutil.rmtree, cls.pkidir, True)
    cls.pki = make_pki(cls.pkidir)
    return cls.pki


class MosquittoSub:
    """mosquitto_sub (started and killed by pid), line-buffered so the SUBACK is seen."""

    def __init__(self, args):
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-F", "MSG|%t|%q|%p", "-W", "15"] + args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"mosquitto_sub: no {needle!r} within {timeout}s: "
                                     f"{seen}") from None
            if line is None:
                self.proc.wait(5)
                raise AssertionError(f"mosquitto_sub exited ({self.proc.returncode}) before "
                                     f"{needle!r}: {seen} {self.proc.stderr.read()}")
            seen.append(line)
            if needle in line:
                return line

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


# ---------------------------------------------------------------------------------------------

class TlsListener(BrokerTestCase):
    """One broker: a plain listener, "tls" (server certificate only), "tls13" (tls_min_version
    1.3) and "chacha" (one TLS 1.3 cipher suite); HTTP for /metrics."""

    @classmethod
    def setUpClass(cls):
        class_pki(cls)
        cls.tls_port, cls.tls13_port, cls.chacha_port = free_port(), free_port(), free_port()
        p = cls.pki
        cls.broker_config = (
            listener("tls", cls.tls_port, tls_cert=p.server_cert, tls_key=p.server_key)
            + listener("tls13", cls.tls13_port, tls_cert=p.server_cert,
                       tls_key=p.server_key, tls_min_version="1.3")
            + listener("chacha", cls.chacha_port, tls_cert=p.server_cert,
                       tls_key=p.server_key, tls_ciphersuites="TLS_CHACHA20_POLY1305_SHA256"))
        cls.broker_args = {"http": True,
                           "listener_ports": [cls.tls_port, cls.tls13_port, cls.chacha_port]}
        super().setUpClass()

    def ctx(self, **kw):
        return client_context(self.pki.ca_cert, **kw)

    def connected(self, port, version=5, **kw):
        outcome = mqtt_over_tls(port, self.ctx(**kw), version)
        self.assertEqual(outcome[:2], ("connack", 0), outcome)
        self.addCleanup(outcome[2].close)
        return outcome[2]

    @unittest.skipUnless(HAVE_MOSQUITTO_CLIENTS, "mosquitto_pub/mosquitto_sub not installed")
    def test_mosquitto_clients_round_trip(self):
        """mosquitto_sub and mosquitto_pub with --cafile over the TLS listener, 5.0 and 3.1.1,
        QoS 1: the subscriber prints the published payload."""
        for version in ("mqttv5", "mqttv311"):
            with self.subTest(version=version):
                topic = unique("tls/cli")
                common = ["-h", HOST, "-p", str(self.tls_port), "--cafile", self.pki.ca_cert,
                          "-V", version]
                sub = MosquittoSub(common + ["-t", topic, "-q", "1", "-C", "1",
                                             "-i", unique("msub")])
                self.addCleanup(sub.close)
                sub.wait_for("received SUBACK")
                r = subprocess.run(["mosquitto_pub"] + common + ["-t", topic, "-q", "1",
                                                                 "-m", f"over tls {version}"],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(sub.wait_for("MSG|"), f"MSG|{topic}|1|over tls {version}")

    def test_paho_round_trip(self):
        """paho with tls_set(ca_certs=...) on 5.0 and 3.1.1: subscribe, publish QoS 1 and 2,
        receive both."""
        for version in (5, 4):
            with self.subTest(version=version):
                c = MqttClient(self.tls_port, version=version)
                self.addCleanup(c.close)
                quietly(c.client.tls_set, ca_certs=self.pki.ca_cert)
                c.connect()
                topic = unique("tls/paho")
                self.assertEqual(c.subscribe(topic, qos=2), [2])
                c.publish(topic, b"q1", qos=1)
                c.publish(topic, b"q2", qos=2)
                got = sorted((m.topic, m.payload, m.qos) for m in c.collect(2))
                self.assertEqual(got, [(topic, b"q1", 1), (topic, b"q2", 2)])

    def test_raw_tls_both_versions_and_alpn(self):
        """Raw MQTT over TLS: CONNACK 0 on 5.0 and 3.1.1; ALPN "mqtt" is selected when
        offered, and a client offering only another protocol still connects (without ALPN)."""
        for version in (5, 4):
            c = self.connected(self.tls_port, version)
            c.ping()
            c.expect(PINGRESP)
        c = self.connected(self.tls_port, alpn=["x-other", "mqtt"])
        self.assertEqual(c.sock.selected_alpn_protocol(), "mqtt")
        c = self.connected(self.tls_port, alpn=["x-other"])
        self.assertIsNone(c.sock.selected_alpn_protocol())

    def test_wrong_ca_fails_on_the_client(self):
        """A client trusting another CA refuses the server's certificate (python ssl and
        mosquitto_pub); the broker counts the failed handshakes."""
        before = metrics(self.broker.http_port)
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsRaw(self.tls_port, client_context(self.pki.other_ca_cert))
        expected = 1
        if HAVE_MOSQUITTO_CLIENTS:
            r = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(self.tls_port),
                                "--cafile", self.pki.other_ca_cert, "-t", "x", "-m", "y"],
                               capture_output=True, text=True, timeout=20)
            self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
            expected += 1
        assert_metric_deltas(self, self.broker.http_port, before, {TLS_FAILURES: expected})

    def test_plain_client_on_tls_port_is_dropped_and_counted(self):
        """A plain MQTT CONNECT sent to the TLS port gets no CONNACK: the broker closes the
        connection (at most after a TLS alert) and counts a TLS handshake failure."""
        before = metrics(self.broker.http_port)
        with socket.create_connection((HOST, self.tls_port), timeout=5) as s:
            s.sendall(encode_connect(unique("plain"), 5))
            received = b""
            deadline = time.monotonic() + 5
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    self.fail(f"connection still open after 5s (received {received!r})")
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
        self.assertFalse(received.startswith(b"\x20"), f"got a CONNACK-like answer {received!r}")
        if received:
            self.assertEqual(received[0], 0x15, f"expected a TLS alert record: {received!r}")
        assert_metric_deltas(self, self.broker.http_port, before, {TLS_FAILURES: 1})

    def test_min_version_13_refuses_a_tls12_client(self):
        """tls_min_version = "1.3": a client limited to TLS 1.2 fails the handshake (counted);
        a default client gets TLS 1.3. The 1.2 listener accepts the 1.2 client."""
        before = metrics(self.broker.http_port)
        with self.assertRaises(ssl.SSLError):
            TlsRaw(self.tls13_port, self.ctx(max_version=ssl.TLSVersion.TLSv1_2))
        assert_metric_deltas(self, self.broker.http_port, before, {TLS_FAILURES: 1})
        c = self.connected(self.tls13_port)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        c = self.connected(self.tls_port, max_version=ssl.TLSVersion.TLSv1_2)
        self.assertEqual(c.sock.version(), "TLSv1.2")

    def test_tls13_ciphersuites(self):
        """tls_ciphersuites limits TLS 1.3 to the configured suite."""
        c = self.connected(self.chacha_port)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        self.assertEqual(c.sock.cipher()[0], "TLS_CHACHA20_POLY1305_SHA256")

    def test_bench_over_tls_counts_every_message(self):
        """starling-bench --tls (verifying against the test CA) runs a QoS 1 fan-out through
        the TLS listener: every message reaches every subscriber, none lost or duplicated, and
        the report names the negotiated protocol. Trusting the other CA fails the run with
        OpenSSL's verification error."""
        prefix = unique("tlsbench")
        status, report, stderr = run_bench([
            "fanout", "--port", str(self.tls_port), "--tls", "--tls-ca", self.pki.ca_cert,
            "--publishers", "2", "--subscribers", "3", "--count", "200", "--rate", "400",
            "--qos", "1", "--warmup", "0", "--duration", "20", "--drain", "5",
            "--topic-prefix", prefix, "--threads", "2"])
        self.assertEqual(status, 0, f"bench failed: {report and report['error']} {stderr}")
        self.assertTrue(report["ok"], report["error"])
        self.assertEqual(report["config"]["transport"], "tls")
        self.assertTrue(report["config"]["tls"].startswith("TLSv1.3 "), report["config"])
        self.assertEqual(report["sent_total"], 400)
        self.assertEqual(report["received_total"], 1200)
        self.assertEqual((report["lost"], report["duplicates"]), (0, 0))

        status, report, stderr = run_bench([
            "pairs", "--port", str(self.tls_port), "--tls", "--tls-ca", self.pki.other_ca_cert,
            "--pairs", "1", "--count", "10", "--duration", "5", "--warmup", "0",
            "--connect-timeout", "5"])
        self.assertNotEqual(status, 0)
        self.assertIn("certificate verify failed", report["error"] if report else stderr)


class MutualTls(BrokerTestCase):
    """require_client_cert = true with tls_ca = the test CA."""

    @classmethod
    def setUpClass(cls):
        p = class_pki(cls)
        cls.tls_port = free_port()
        cls.broker_config = listener("mtls", cls.tls_port, tls_cert=p.server_cert,
                                     tls_key=p.server_key, tls_ca=p.ca_cert,
                                     require_client_cert=True)
        cls.broker_args = {"http": True, "listener_ports": [cls.tls_port]}
        super().setUpClass()

    def assert_refused(self, cert=None, key_file=None):
        """No CONNACK: the handshake fails, or (TLS 1.3, where the client finishes first) the
        broker's alert ends the connection before any MQTT answer. Counted as a TLS failure."""
        before = metrics(self.broker.http_port)
        outcome = mqtt_over_tls(self.tls_port, client_context(self.pki.ca_cert, cert, key_file))
        if outcome[0] == "connack":
            outcome[2].close()
        self.assertIn(outcome[0], ("handshake", "closed"), f"connected: {outcome}")
        assert_metric_deltas(self, self.broker.http_port, before, {TLS_FAILURES: 1})
        return outcome

    def test_without_certificate_refused(self):
        self.assert_refused()

    def test_other_ca_certificate_refused(self):
        self.assert_refused(self.pki.other_client_cert, self.pki.other_client_key)

    def test_expired_certificate_refused(self):
        self.assert_refused(self.pki.expired_client_cert, self.pki.expired_client_key)

    def test_not_yet_valid_certificate_refused(self):
        self.assert_refused(self.pki.future_client_cert, self.pki.future_client_key)

    def test_good_certificate_accepted(self):
        """The CA's client certificate: raw CONNACK 0 (5.0 and 3.1.1), paho round trip, and
        mosquitto_pub/_sub with --cert/--key."""
        p = self.pki
        for version in (5, 4):
            outcome = mqtt_over_tls(self.tls_port, client_context(p.ca_cert, p.client_cert,
                                                                  p.client_key), version)
            self.assertEqual(outcome[:2], ("connack", 0), outcome)
            outcome[2].close()
        c = MqttClient(self.tls_port)
        self.addCleanup(c.close)
        quietly(c.client.tls_set, ca_certs=p.ca_cert, certfile=p.client_cert,
                keyfile=p.client_key)
        c.connect()
        topic = unique("mtls")
        self.assertEqual(c.subscribe(topic, qos=1), [1])
        c.publish(topic, b"mutual", qos=1)
        self.assertEqual(c.get().payload, b"mutual")
        if HAVE_MOSQUITTO_CLIENTS:
            common = ["-h", HOST, "-p", str(self.tls_port), "--cafile", p.ca_cert,
                      "--cert", p.client_cert, "--key", p.client_key]
            sub = MosquittoSub(common + ["-t", topic, "-C", "1", "-q", "1"])
            self.addCleanup(sub.close)
            sub.wait_for("received SUBACK")
            r = subprocess.run(["mosquitto_pub"] + common + ["-t", topic, "-m", "cli", "-q", "1"],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sub.wait_for("MSG|"), f"MSG|{topic}|1|cli")


class UsernameFromCert(BrokerTestCase):
    """username_from_cert: the verified certificate's CN is the user name. A password file
    (one unrelated user) makes anonymous clients refused, and the ACL gives alice alice/# and
    carol carol/#; so what a client may do shows which user name it got."""

    @classmethod
    def setUpClass(cls):
        p = class_pki(cls)  # client cert CN "alice"
        cls.carol = p.client("carol")
        pw = os.path.join(cls.pkidir, "passwd")
        r = starling_passwd("-c", "-b", pw, "bob", "bob-pw")
        if r.returncode != 0:
            raise AssertionError(r.stderr)
        acl = write(os.path.join(cls.pkidir, "acl"),
                    "user alice\ntopic readwrite alice/#\nuser carol\ntopic readwrite carol/#\n"
                    "user bob\ntopic readwrite bob/#\n")
        cls.certuser_port, cls.noname_port = free_port(), free_port()
        tls = dict(tls_cert=p.server_cert, tls_key=p.server_key, tls_ca=p.ca_cert,
                   require_client_cert=True)
        cls.broker_config = (listener("certuser", cls.certuser_port, username_from_cert=True,
                                      **tls)
                             + listener("noname", cls.noname_port, **tls)
                             + f'[auth]\npassword_file = "{pw}"\nacl_file = "{acl}"\n')
        cls.broker_args = {"http": True, "listener_ports": [cls.certuser_port, cls.noname_port]}
        super().setUpClass()

    def connect(self, port, cert, version=5, **kw):
        c_file, k_file = cert
        outcome = mqtt_over_tls(port, client_context(self.pki.ca_cert, c_file, k_file), version,
                                **kw)
        if outcome[0] == "connack":
            self.addCleanup(outcome[2].close)
        return outcome

    def test_cn_is_the_username(self):
        """alice's certificate, no user name in CONNECT: accepted (not anonymous), success
        counted, may subscribe to alice/# and not to carol/# (5.0 and 3.1.1)."""
        before = metrics(self.broker.http_port)
        alice = (self.pki.client_cert, self.pki.client_key)
        outcome = self.connect(self.certuser_port, alice)
        self.assertEqual(outcome[:2], ("connack", 0), f"{outcome}\n{self.broker.log()[-1500:]}")
        c = outcome[2]
        self.assertEqual(c.subscribe([("alice/#", 0), ("carol/#", 0)]).reason_codes,
                         [0, RC_NOT_AUTHORIZED])
        c.publish("alice/x", b"from alice", qos=0)
        m = c.expect(PUBLISH)
        self.assertEqual((m.topic, m.payload), ("alice/x", b"from alice"))
        outcome = self.connect(self.certuser_port, alice, version=4)
        self.assertEqual(outcome[:2], ("connack", 0), outcome)
        self.assertEqual(outcome[2].subscribe([("alice/#", 0), ("carol/#", 0)]).reason_codes,
                         [0, 0x80])
        assert_metric_deltas(self, self.broker.http_port, before, {
            key("starling_auth_total", result="success"): 2,
            key("starling_auth_total", result="anonymous_refused"): 0})

    def test_another_cn_gets_its_own_rights(self):
        """carol's certificate (same CA) makes the user name carol: carol/# yes, alice/# no."""
        outcome = self.connect(self.certuser_port, self.carol)
        self.assertEqual(outcome[:2], ("connack", 0), outcome)
        self.assertEqual(outcome[2].subscribe([("carol/#", 0), ("alice/#", 0)]).reason_codes,
                         [0, RC_NOT_AUTHORIZED])

    def test_connect_username_does_not_override_the_certificate(self):
        """carol's certificate with CONNECT user name "alice" (and bob's real credentials)
        still acts as carol: the certificate is the identity on this listener."""
        for username, password in (("alice", None), ("bob", "bob-pw")):
            with self.subTest(username=username):
                outcome = self.connect(self.certuser_port, self.carol, username=username,
                                       password=password)
                if outcome[0] != "connack" or outcome[1] != 0:
                    continue  # refusing the mismatch is acceptable too
                self.assertEqual(outcome[2].subscribe([("alice/#", 0), ("bob/#", 0),
                                                       ("carol/#", 0)]).reason_codes,
                                 [RC_NOT_AUTHORIZED, RC_NOT_AUTHORIZED, 0])

    def test_without_username_from_cert_the_client_is_anonymous(self):
        """The same certificate on a listener without username_from_cert: no user name, so
        anonymous, refused with 0x87 because a password file is set."""
        outcome = self.connect(self.noname_port, (self.pki.client_cert, self.pki.client_key))
        self.assertEqual(outcome[:2], ("connack", RC_NOT_AUTHORIZED), outcome)


class CertificateReload(BrokerTestCase):
    """SIGHUP reloads the listener's certificate files: new connections get the new
    certificate, open connections keep working; unusable files keep the current one."""

    broker_scope = "test"

    def setUp(self):
        self.pkidir = tempfile.mkdtemp(prefix="starling-pki-")
        self.addCleanup(shutil.rmtree, self.pkidir, True)
        self.pki = make_pki(self.pkidir)
        self.cert = os.path.join(self.pkidir, "live.crt")
        self.key = os.path.join(self.pkidir, "live.key")
        shutil.copyfile(self.pki.server_cert, self.cert)
        shutil.copyfile(self.pki.server_key, self.key)
        self.tls_port = free_port()
        self.broker_config = listener("tls", self.tls_port, tls_cert=self.cert, tls_key=self.key)
        self.broker_args = {"listener_ports": [self.tls_port]}
        super().setUp()
        self.ctx = client_context(self.pki.ca_cert)

    def replace(self, cert_src, key_src):
        for src, dst in ((cert_src, self.cert), (key_src, self.key)):
            shutil.copyfile(src, dst + ".new")
            os.replace(dst + ".new", dst)

    def new_connection(self):
        outcome = mqtt_over_tls(self.tls_port, self.ctx)
        self.assertEqual(outcome[:2], ("connack", 0), outcome)
        self.addCleanup(outcome[2].close)
        return outcome[2]

    def test_new_connections_get_the_new_certificate(self):
        old_der = pem_to_der(self.pki.server_cert)
        existing = self.new_connection()
        self.assertEqual(existing.peer_der(), old_der)
        topic = unique("reload")
        self.assertEqual(existing.subscribe([(topic, 0)]).reason_codes, [0])

        new_cert, new_key = make_leaf(self.pkidir, "server2", "reloaded.localhost",
                                      self.pki.ca_cert, self.pki.ca_key, server=True)
        new_der = pem_to_der(new_cert)
        self.assertNotEqual(new_der, old_der)
        self.replace(new_cert, new_key)
        self.assertEqual(sighup(self.broker), "reloaded")
        self.assertIn("listener tls: certificates reloaded", self.broker.log())

        fresh = self.new_connection()
        self.assertEqual(fresh.peer_der(), new_der)
        subject = dict(x[0] for x in fresh.sock.getpeercert()["subject"])
        self.assertEqual(subject["commonName"], "reloaded.localhost")
        # The connection opened before the reload is still up and served.
        fresh.publish(topic, b"after reload", qos=0)
        m = existing.expect(PUBLISH)
        self.assertEqual((m.topic, m.payload), (topic, b"after reload"))
        existing.ping()
        existing.expect(PINGRESP)
        self.assertEqual(existing.peer_der(), old_der)

    def test_unusable_files_keep_the_current_certificate(self):
        """A certificate file that is not PEM, then a key of another certificate: each reload
        is refused for the certificates (logged) and new connections keep the current one."""
        old_der = pem_to_der(self.pki.server_cert)
        other_cert, _ = make_leaf(self.pkidir, "server3", "other", self.pki.ca_cert,
                                  self.pki.ca_key, server=True)
        for n, (cert_text, key_src) in enumerate(((b"not a certificate\n", self.pki.server_key),
                                                  (None, self.pki.client_key))):
            with self.subTest(case=n):
                if cert_text is not None:
                    with open(self.cert + ".new", "wb") as f:
                        f.write(cert_text)
                    os.replace(self.cert + ".new", self.cert)
                    shutil.copyfile(key_src, self.key)
                else:
                    self.replace(other_cert, key_src)
                failures = self.broker.log().count("certificates not reloaded")
                sighup(self.broker)
                self.assertEqual(self.broker.log().count("certificates not reloaded"),
                                 failures + 1, self.broker.log()[-2000:])
                self.assertEqual(self.new_connection().peer_der(), old_der)


class BindFlag(BrokerTestCase):
    """--bind sets the plain MQTT listener and never moves a TLS or WebSocket one: with a config
    that has only a TLS and a WebSocket listener (the harness always passes --bind), a plain
    listener is added on the --bind address and the others stay where the file put them."""

    @classmethod
    def setUpClass(cls):
        p = class_pki(cls)
        cls.tls_port, cls.ws_port = free_port(), free_port()
        cls.broker_config = (listener("mqtt", cls.tls_port, tls_cert=p.server_cert,
                                      tls_key=p.server_key)
                             + listener("ws", cls.ws_port, protocol="ws"))
        cls.broker_args = {"listener_ports": [cls.tls_port, cls.ws_port]}
        super().setUpClass()

    def test_plain_listener_on_the_bind_address(self):
        self.raw_client(client_id=unique("bind"))  # raw_client asserts CONNACK 0

    def test_tls_listener_stays_tls(self):
        outcome = mqtt_over_tls(self.tls_port, client_context(self.pki.ca_cert))
        self.assertEqual(outcome[:2], ("connack", 0), outcome)
        outcome[2].close()
        # Plain MQTT there is not answered with a CONNACK: it is still a TLS port.
        with socket.create_connection((HOST, self.tls_port), timeout=5) as s:
            s.sendall(encode_connect(unique("plain-on-tls"), 5))
            s.settimeout(5)
            try:
                answer = s.recv(64)
            except (ConnectionResetError, socket.timeout):
                answer = b""
            self.assertNotEqual(answer[:1], bytes([CONNACK << 4]), answer)

    def test_websocket_listener_stays_websocket(self):
        with socket.create_connection((HOST, self.ws_port), timeout=5) as s:
            s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
            s.settimeout(5)
            self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 101"))


class BadTlsConfig(unittest.TestCase):
    """TLS settings that cannot work stop the start with "file:line: reason" (exit 2)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-test-")
        cls.pki = make_pki(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_config(self, text):
        conf = write(os.path.join(self.tmp, "starling.toml"), text)
        args = ["--config", conf, "--bind", f"{HOST}:{free_port()}", "--http", "off",
                "--data", os.path.join(self.tmp, "data"), "--threads", "1"]
        code, out, err = run_until_exit(args)
        return conf, code, out, err

    def assert_config_error(self, text, line, *needles):
        conf, code, out, err = self.run_config(text)
        self.assertEqual(code, 2, f"stdout={out!r} stderr={err!r}")
        self.assertIn(f"{conf}:{line}:", err)
        for needle in needles:
            self.assertIn(needle, err)

    def test_cert_without_key(self):
        port = free_port()
        self.assert_config_error(
            f'[listeners.tls]\nbind = "{HOST}:{port}"\ntls_cert = "{self.pki.server_cert}"\n',
            1, "tls_key")

    def test_missing_files(self):
        port = free_port()
        self.assert_config_error(
            f'[listeners.tls]\nbind = "{HOST}:{port}"\ntls_cert = "{self.tmp}/missing.crt"\n'
            f'tls_key = "{self.pki.server_key}"\n', 3, "missing.crt", "No such file")
        self.assert_config_error(
            f'[listeners.tls]\nbind = "{HOST}:{port}"\ntls_cert = "{self.pki.server_cert}"\n'
            f'tls_key = "{self.pki.server_key}"\ntls_ca = "{self.tmp}/nope-ca.pem"\n'
            'require_client_cert = true\n', 5, "nope-ca.pem")

    def test_inconsistent_settings(self):
        """require_client_cert without tls_ca, username_from_cert without
        require_client_cert, an unknown tls_min_version, TLS keys on a listener without TLS."""
        port = free_port()
        head = (f'[listeners.tls]\nbind = "{HOST}:{port}"\ntls_cert = "{self.pki.server_cert}"\n'
                f'tls_key = "{self.pki.server_key}"\n')
        self.assert_config_error(head + "require_client_cert = true\n", 1, "tls_ca")
        self.assert_config_error(head + f'tls_ca = "{self.pki.ca_cert}"\n'
                                 "username_from_cert = true\n", 1, "require_client_cert")
        self.assert_config_error(head + 'tls_min_version = "1.1"\n', 5, "tls_min_version")
        self.assert_config_error(f'[listeners.x]\nbind = "{HOST}:{port}"\n'
                                 "require_client_cert = true\n", 1, "require_client_cert")

    def test_unusable_certificate_content(self):
        """A certificate file that is not PEM, and a key that belongs to another certificate,
        are bad files like a bad password or ACL file: the start fails with exit 2 and the
        config file, line and the bad file named on stderr; --check-config refuses them too."""
        port = free_port()
        junk = write(os.path.join(self.tmp, "junk.crt"), "not a certificate\n")
        for cert, key_file, needle in ((junk, self.pki.server_key, "junk.crt"),
                                       (self.pki.server_cert, self.pki.client_key, "client.key")):
            text = (f'[listeners.tls]\nbind = "{HOST}:{port}"\ntls_cert = "{cert}"\n'
                    f'tls_key = "{key_file}"\n')
            with self.subTest(needle=needle):
                conf, code, out, err = self.run_config(text)
                self.assertEqual(code, 2, f"stdout={out[-600:]!r} stderr={err!r}")
                self.assertIn(needle, err)
                # The listener's table line: the files are loaded after the file is parsed.
                self.assertRegex(err, f"{conf}:1: listeners.tls: ")
            with self.subTest(needle=needle, check_config=True):
                conf = write(os.path.join(self.tmp, "starling.toml"), text)
                code, out, err = run_until_exit(["--config", conf, "--check-config"])
                self.assertEqual(code, 2, f"--check-config: stdout={out!r} stderr={err!r}")


if __name__ == "__main__":
    unittest.main()
