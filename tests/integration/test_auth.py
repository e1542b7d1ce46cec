"""Authentication and authorization through real sockets: password files made by
mosquitto_passwd ($7$ PBKDF2-SHA512, $6$ SHA-512) and by `starling passwd` (also --scram),
anonymous access per listener, MQTT 5 enhanced authentication with SCRAM-SHA-256 (a small
RFC 5802 client written here, speaking raw MQTT 5), Mosquitto-format ACL files (user sections,
%u/%c patterns, deny rules, the anonymous section, wills), SIGHUP reloads of both files, start
failures on malformed lines ("file:line: reason", exit 2) and the Prometheus counters
starling_auth_total / starling_acl_denied_total.

Every reason code is checked on the wire with mqtt_raw.RawClient. "Not delivered" is proven
without waiting for silence: the same publisher sends an allowed marker message after the
denied one, and the subscriber must see the marker first (MQTT keeps one publisher's order).
"""

import base64
import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import (HOST, BrokerTestCase, MqttClient, check_no_sanitizer_report, free_port,
                     unique, wait_for_port)
from mqtt_raw import (AUTH, CONNACK, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC,
                      ConnectionClosed,
                      RawClient, encode_auth, encode_connect, encode_publish)

RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_CONTINUE_AUTHENTICATION = 0x18
RC_REAUTHENTICATE = 0x19
RC_PROTOCOL_ERROR = 0x82
RC_BAD_USERNAME_OR_PASSWORD = 0x86
RC_NOT_AUTHORIZED = 0x87
RC_BAD_AUTHENTICATION_METHOD = 0x8C
V311_BAD_USERNAME_OR_PASSWORD = 4
V311_NOT_AUTHORIZED = 5
V311_SUBACK_FAILURE = 0x80

SCRAM = "SCRAM-SHA-256"
HAVE_MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") is not None


# ---------------------------------------------------------------------------------------------
# Helpers

def starling_bin():
    binary = os.environ.get("STARLING_BIN")
    if not binary:
        raise RuntimeError("STARLING_BIN is not set (ctest sets it)")
    # The dev build may be relinked by someone else right now: give it a moment.
    deadline = time.monotonic() + 30
    while not os.path.exists(binary) and time.monotonic() < deadline:
        time.sleep(0.5)
    return binary


def starling_passwd(*args, stdin=None):
    """Runs `starling passwd args...`; returns the CompletedProcess (text)."""
    r = subprocess.run([starling_bin(), "passwd", *args], input=stdin, capture_output=True,
                       text=True, timeout=30)
    check_no_sanitizer_report(r.stdout + r.stderr, f"starling passwd {' '.join(args)}")
    return r


def mosquitto_passwd(*args):
    r = subprocess.run(["mosquitto_passwd", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"mosquitto_passwd {args}: {r.returncode} {r.stderr}")
    return r


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def read(path):
    with open(path) as f:
        return f.read()


def metrics(http_port):
    """{(name, frozenset(labels)): value} from /metrics (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def metric(snapshot, name, **labels):
    return snapshot.get((name, frozenset(labels.items())), 0.0)


def assert_metric_deltas(test, http_port, before, expected, timeout=5.0):
    """Waits (bounded) until every counter in expected {(name, labels-dict-items): delta} has
    moved by at least its delta from `before`, then asserts the exact deltas."""
    deadline = time.monotonic() + timeout
    while True:
        now = metrics(http_port)
        deltas = {key: metric(now, key[0], **dict(key[1])) - metric(before, key[0], **dict(key[1]))
                  for key in expected}
        if all(deltas[k] >= v for k, v in expected.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    test.assertEqual({k: deltas[k] for k in expected}, expected)


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


def sighup(broker, timeout=10.0):
    """Sends SIGHUP to the broker and waits for its verdict in the log: returns "reloaded" or
    the error line of a refused reload."""
    def verdicts():
        return [line for line in broker.log().splitlines()
                if "SIGHUP: reloaded" in line or "SIGHUP: config not reloaded" in line]
    seen = len(verdicts())
    broker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = verdicts()
        if len(lines) > seen:
            return "reloaded" if "SIGHUP: reloaded" in lines[seen] else lines[seen]
        time.sleep(0.02)
    raise AssertionError(f"no SIGHUP verdict in the log within {timeout}s:\n{broker.log()[-3000:]}")


def run_until_exit(args, timeout=20.0):
    """Runs the broker binary expecting it to exit on its own (a start failure). A broker that
    starts anyway is stopped (by pid) after `timeout` and the test fails."""
    proc = subprocess.Popen([starling_bin(), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"broker did not exit (started?): stdout={out[-2000:]!r} "
                             f"stderr={err[-2000:]!r}") from None
    check_no_sanitizer_report(out + err, f"starling {' '.join(args)}")
    return proc.returncode, out, err


def start_args(tmp, config_path):
    return ["--config", config_path, "--bind", f"{HOST}:{free_port()}", "--http", "off",
            "--data", os.path.join(tmp, "data"), "--threads", "1"]


# -- SCRAM-SHA-256 client (RFC 5802 / RFC 7677), independent of the broker's code

def _b64(data):
    return base64.b64encode(data).decode()


def _hmac(key_bytes, msg):
    return hmac.new(key_bytes, msg if isinstance(msg, bytes) else msg.encode(), hashlib.sha256).digest()


def scram_keys(password, salt, iterations):
    """(StoredKey, ServerKey, ClientKey, SaltedPassword) for a password."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key"), client_key, salted


class ScramClient:
    def __init__(self, user, password, client_nonce=None):
        self.user = user
        self.password = password
        self.client_nonce = client_nonce or _b64(os.urandom(18))
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.client_first_bare = f"n={name},r={self.client_nonce}"
        self.gs2_header = "n,,"
        self.expected_server_final = None

    def client_first(self):
        return (self.gs2_header + self.client_first_bare).encode()

    def client_final(self, server_first, nonce_override=None):
        server_first = server_first.decode() if isinstance(server_first, bytes) else server_first
        attrs = dict(part.split("=", 1) for part in server_first.split(","))
        nonce = attrs["r"]
        if not nonce.startswith(self.client_nonce) or len(nonce) == len(self.client_nonce):
            raise AssertionError(f"server nonce {nonce!r} does not extend ours "
                                 f"{self.client_nonce!r}")
        salt = base64.b64decode(attrs["s"], validate=True)
        iterations = int(attrs["i"])
        stored_key, server_key, client_key, _ = scram_keys(self.password, salt, iterations)
        without_proof = f"c={_b64(self.gs2_header.encode())},r={nonce_override or nonce}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}"
        signature = _hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.expected_server_final = "v=" + _b64(_hmac(server_key, auth_message))
        self.server_first_attrs = attrs
        return f"{without_proof},p={_b64(proof)}".encode()


def scram_connect(port, user, password, client_id=None, tamper_nonce=False):
    """Runs the SCRAM exchange over raw MQTT 5. Returns (client, client_state, auth, connack):
    auth is the broker's AUTH packet (or None if it answered CONNACK at once)."""
    c = Raw(port, 5)
    s = ScramClient(user, password)
    c.send(encode_connect(client_id or unique("scram"), properties={
        "authentication_method": SCRAM, "authentication_data": s.client_first()}))
    first = c.recv_packet(5)
    if first is None:
        c.close()
        raise AssertionError("no answer to a SCRAM CONNECT within 5s")
    if first.type == CONNACK:
        return c, s, None, first
    if first.type != AUTH:
        c.close()
        raise AssertionError(f"expected AUTH, got {first!r}")
    final = s.client_final(first.properties["authentication_data"],
                           nonce_override="tampered" + s.client_nonce if tamper_nonce else None)
    c.send(encode_auth(RC_CONTINUE_AUTHENTICATION, {"authentication_method": SCRAM,
                                                    "authentication_data": final}))
    try:
        return c, s, first, c.expect(CONNACK, 5)
    except ConnectionClosed:
        c.close()
        raise AssertionError("the broker closed the connection after our AUTH (client-final) "
                             "without a CONNACK") from None


class Raw(RawClient):
    """RawClient that keeps PUBLISH packets arriving while it waits for an ack (a client
    subscribed to its own topics gets them interleaved with its PUBACKs)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.stash = []

    def expect(self, ptype, timeout=5.0):
        if ptype == PUBLISH and self.stash:
            return self.stash.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv_packet(max(0.0, deadline - time.monotonic()))
            if p is None:
                raise AssertionError(f"no {ptype} packet within {timeout}s")
            if p.type == PUBLISH and ptype != PUBLISH:
                self.stash.append(p)
                continue
            if p.type != ptype:
                raise AssertionError(f"expected packet type {ptype}, got {p!r}")
            return p


class RawTestCase(BrokerTestCase):
    """Raw clients that log in. The broker is the class's or the test's own: its password and
    ACL files are written into its directory before it starts."""

    broker_scope = None

    def client(self, version=5, port=None):
        c = Raw(port or self.port, version)
        self.addCleanup(c.close)
        return c

    def connect(self, version=5, user=None, password=None, client_id=None, will=None,
                expect=0, port=None):
        """A raw client connected (CONNACK reason `expect` asserted)."""
        c = self.client(version, port)
        ack = c.connect(client_id or unique("c"), username=user, password=password, will=will)
        self.assertEqual(ack.reason_code, expect,
                         f"CONNACK for user={user!r}: {ack!r}\n{self.broker.log()[-1500:]}")
        return c

    def refused(self, expect, version=5, **kw):
        """Connects expecting a refusing CONNACK `expect`, then the broker closes."""
        c = self.connect(version, expect=expect, **kw)
        self.assertIsNone(c.wait_closed(5))
        return c

    def publishes_until(self, sub, marker_topic, timeout=5.0):
        """The (topic, payload) of every PUBLISH sub receives up to and including one on
        marker_topic. QoS 1/2 deliveries are acknowledged."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = sub.expect(PUBLISH, max(0.0, deadline - time.monotonic()))
            except AssertionError:
                raise AssertionError(f"no message on {marker_topic} within {timeout}s; "
                                     f"got {got}") from None
            if p.qos == 1:
                sub.puback(p.packet_id)
            got.append((p.topic, p.payload))
            if p.topic == marker_topic:
                return got


# ---------------------------------------------------------------------------------------------
# Password files made by mosquitto_passwd; anonymous access per listener.

@unittest.skipUnless(HAVE_MOSQUITTO_PASSWD, "mosquitto_passwd is not installed")
class MosquittoPasswordFile(RawTestCase):
    """[auth] password_file from mosquitto_passwd: "pbk" ($7$, its default) and "sha" ($6$,
    -H sha512). The first listener has no allow_anonymous (so anonymous is refused, a password
    file being set); the "open" listener has allow_anonymous = true."""

    broker_scope = "class"
    broker_args = {"http": True}

    @classmethod
    def prepare_broker(cls, broker):
        cls.open_port = free_port()
        cls.pwfile = os.path.join(broker.tmp, "passwd")
        mosquitto_passwd("-c", "-b", cls.pwfile, "pbk", "pbk-secret")
        r = subprocess.run(["mosquitto_passwd", "-H", "sha512", "-b", cls.pwfile, "sha",
                            "sha secret"], capture_output=True, text=True, timeout=30)
        cls.have_sha512 = r.returncode == 0
        broker.config_text = (
            '[listeners.default]\nbind = "127.0.0.1:1"\n'
            f'[listeners.open]\nbind = "{HOST}:{cls.open_port}"\nallow_anonymous = true\n'
            f'[auth]\npassword_file = "{cls.pwfile}"\n')

    def test_file_has_both_hash_kinds(self):
        """The fixture really holds a $7$ line (mosquitto 2's default) and a $6$ line."""
        lines = dict(line.split(":", 1) for line in read(self.pwfile).split())
        self.assertTrue(lines["pbk"].startswith("$7$"), lines["pbk"])
        if self.have_sha512:
            self.assertTrue(lines["sha"].startswith("$6$"), lines["sha"])

    def test_pbkdf2_right_password_v5_and_v311(self):
        """$7$: the right password connects on 5.0 and 3.1.1 and the session works."""
        for version in (5, 4):
            with self.subTest(version=version):
                c = self.connect(version, user="pbk", password="pbk-secret")
                c.ping()
                c.expect(PINGRESP)

    def test_pbkdf2_wrong_password(self):
        """$7$: a wrong password gets 0x86 (5.0) / 4 (3.1.1) and the connection closes."""
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="pbk", password="pbk-secreT")
        self.refused(V311_BAD_USERNAME_OR_PASSWORD, 4, user="pbk", password="wrong")

    def test_sha512_right_and_wrong_password(self):
        """$6$ (mosquitto_passwd -H sha512): right password 0, wrong 0x86 / 4."""
        if not self.have_sha512:
            self.skipTest("mosquitto_passwd -H sha512 not supported")
        self.connect(5, user="sha", password="sha secret")
        self.connect(4, user="sha", password="sha secret")
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="sha", password="sha secre")
        self.refused(V311_BAD_USERNAME_OR_PASSWORD, 4, user="sha", password="")

    def test_unknown_user_and_missing_password(self):
        """An unknown user, and a known user without a password field, are bad credentials."""
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="nobody", password="pbk-secret")
        self.refused(V311_BAD_USERNAME_OR_PASSWORD, 4, user="nobody", password="x")
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="pbk")
        self.refused(V311_BAD_USERNAME_OR_PASSWORD, 4, user="pbk")

    def test_anonymous_refused_once_a_password_file_is_set(self):
        """No user name on a listener without allow_anonymous: 0x87 (5.0) / 5 (3.1.1)."""
        self.refused(RC_NOT_AUTHORIZED, 5)
        self.refused(V311_NOT_AUTHORIZED, 4)

    def test_anonymous_allowed_with_allow_anonymous(self):
        """allow_anonymous = true lets anonymous clients in on that listener only, and a user
        name there is still checked against the file."""
        for version in (5, 4):
            with self.subTest(version=version):
                c = self.connect(version, port=self.open_port)
                c.ping()
                c.expect(PINGRESP)
        self.connect(5, user="pbk", password="pbk-secret", port=self.open_port)
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="pbk", password="nope",
                     port=self.open_port)

    def test_paho_with_password_round_trip(self):
        """paho (username_pw_set) on 5.0 and 3.1.1: authenticated clients publish and receive."""
        for version in (5, 4):
            with self.subTest(version=version):
                c = MqttClient(self.port, version=version)
                self.addCleanup(c.close)
                c.client.username_pw_set("pbk", "pbk-secret")
                c.connect()
                topic = unique("auth/paho")
                self.assertEqual(c.subscribe(topic, qos=1), [1])
                c.publish(topic, b"hello", qos=1)
                m = c.get()
                self.assertEqual((m.topic, m.payload), (topic, b"hello"))
                bad = MqttClient(self.port, version=version)
                self.addCleanup(bad.close)
                bad.client.username_pw_set("pbk", "wrong")
                bad.connect(expect_rc=RC_BAD_USERNAME_OR_PASSWORD if version == 5
                            else V311_BAD_USERNAME_OR_PASSWORD)

    def test_auth_counters(self):
        """starling_auth_total counts each outcome once per CONNECT."""
        before = metrics(self.broker.http_port)
        self.connect(5, user="pbk", password="pbk-secret")
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="pbk", password="x")
        self.refused(V311_BAD_USERNAME_OR_PASSWORD, 4, user="nobody", password="x")
        self.refused(RC_NOT_AUTHORIZED, 5)
        assert_metric_deltas(self, self.broker.http_port, before, {
            key("starling_auth_total", result="success"): 1,
            key("starling_auth_total", result="bad_credentials"): 2,
            key("starling_auth_total", result="anonymous_refused"): 1,
            key("starling_auth_total", result="method_refused"): 0,
        })


# ---------------------------------------------------------------------------------------------
# `starling passwd`

class StarlingPasswd(RawTestCase):
    """Files made and edited by `starling passwd`, read by the broker (reloaded on SIGHUP)."""

    def setUp(self):
        super().setUp()
        self.broker = self.new_broker(start=False)
        self.pwfile = os.path.join(self.broker.tmp, "passwd")

    def passwd(self, *args, ok=True, stdin=None):
        r = starling_passwd(*args, stdin=stdin)
        if ok:
            self.assertEqual(r.returncode, 0, f"starling passwd {args}: {r.stderr}")
        return r

    def start(self):
        self.broker.config_text = f'[auth]\npassword_file = "{self.pwfile}"\n'
        self.broker.start()
        self.port = self.broker.port

    def test_create_add_remove_change(self):
        """-c -b creates a file whose user connects; -b adds a second; -D removes it (refused
        after SIGHUP); -b with a new password changes it (old refused, new accepted)."""
        self.passwd("-c", "-b", self.pwfile, "alice", "first pw")
        self.passwd("-b", self.pwfile, "bob", "bob-pw")
        lines = dict(line.split(":", 1) for line in read(self.pwfile).splitlines())
        self.assertEqual(sorted(lines), ["alice", "bob"])
        self.assertRegex(lines["alice"], r"^\$7\$101\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")
        self.start()
        self.connect(5, user="alice", password="first pw")
        self.connect(4, user="bob", password="bob-pw")

        self.passwd("-D", self.pwfile, "bob")
        self.assertNotIn("bob:", read(self.pwfile))
        self.assertEqual(sighup(self.broker), "reloaded")
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="bob", password="bob-pw")
        self.refused(V311_BAD_USERNAME_OR_PASSWORD, 4, user="bob", password="bob-pw")

        self.passwd("-b", self.pwfile, "alice", "second pw")
        self.assertEqual(sighup(self.broker), "reloaded")
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="alice", password="first pw")
        self.connect(5, user="alice", password="second pw")

    def test_iterations_stdin_and_errors(self):
        """-I sets the $7$ iteration count; without -b the password comes from stdin; -D of an
        unknown user and a missing file (without -c) fail with exit 1 and leave no user."""
        self.passwd("-c", "-b", "-I", "2000", self.pwfile, "iter", "iter-pw")
        self.passwd(self.pwfile, "piped", stdin="piped pw\n")
        lines = dict(line.split(":", 1) for line in read(self.pwfile).splitlines())
        self.assertTrue(lines["iter"].startswith("$7$2000$"), lines["iter"])
        r = self.passwd("-D", self.pwfile, "ghost", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ghost", r.stderr)
        missing = os.path.join(self.broker.tmp, "missing")
        r = self.passwd("-b", missing, "x", "y", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(missing))
        self.start()
        self.connect(5, user="iter", password="iter-pw")
        self.connect(5, user="piped", password="piped pw")
        self.refused(RC_BAD_USERNAME_OR_PASSWORD, 5, user="piped", password="piped pw\n")

    def test_mosquitto_passwd_edits_a_starling_file(self):
        """The file keeps mosquitto's format: mosquitto_passwd adds a user to a file that
        `starling passwd` made, and both users connect."""
        if not HAVE_MOSQUITTO_PASSWD:
            self.skipTest("mosquitto_passwd is not installed")
        self.passwd("-c", "-b", self.pwfile, "ours", "ours-pw")
        mosquitto_passwd("-b", self.pwfile, "theirs", "theirs-pw")
        self.start()
        self.connect(5, user="ours", password="ours-pw")
        self.connect(5, user="theirs", password="theirs-pw")


# ---------------------------------------------------------------------------------------------
# SCRAM-SHA-256 enhanced authentication

class ScramClientSelfCheck(unittest.TestCase):
    def test_client_reproduces_rfc7677_example(self):
        """The test's own SCRAM client computes RFC 7677's example exactly, so a failure
        against the broker is the broker's."""
        s = ScramClient("user", "pencil", client_nonce="rOprNGfwEbeRWgbNEkqO")
        self.assertEqual(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        final = s.client_final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                               "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        self.assertEqual(final, b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        self.assertEqual(s.expected_server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


class ScramTestCase(RawTestCase):
    """A password file with SCRAM entries (`starling passwd --scram`) and one $7$ entry."""

    broker_scope = "class"
    broker_args = {"http": True}

    @classmethod
    def prepare_broker(cls, broker):
        cls.pwfile = os.path.join(broker.tmp, "passwd")
        for args in (("-c", "-b", "--scram", cls.pwfile, "sam", "s3cret pw"),
                     ("-b", "--scram", "-I", "5000", cls.pwfile, "it5k", "five thousand"),
                     ("-b", cls.pwfile, "pbk", "pbk-pw")):
            r = starling_passwd(*args)
            if r.returncode != 0:
                raise AssertionError(f"starling passwd {args}: {r.stderr}")
        broker.config_text = f'[auth]\npassword_file = "{cls.pwfile}"\n'

    def scram(self, user, password, **kw):
        c, s, auth, ack = scram_connect(self.port, user, password, **kw)
        self.addCleanup(c.close)
        return c, s, auth, ack


class Scram(ScramTestCase):

    def test_passwd_scram_writes_rfc5802_keys(self):
        """The --scram line is $scram-sha-256$<i>$<salt>$<StoredKey>$<ServerKey> with keys
        that RFC 5802 derives from the password."""
        lines = dict(line.split(":", 1) for line in read(self.pwfile).splitlines())
        for user, password, iterations in (("sam", "s3cret pw", 4096),
                                           ("it5k", "five thousand", 5000)):
            parts = lines[user].split("$")
            self.assertEqual(parts[:3], ["", "scram-sha-256", str(iterations)], lines[user])
            salt = base64.b64decode(parts[3])
            stored, server, _, _ = scram_keys(password, salt, iterations)
            self.assertEqual(base64.b64decode(parts[4]), stored)
            self.assertEqual(base64.b64decode(parts[5]), server)

    def test_scram_success_and_server_signature(self):
        """CONNECT(method, client-first) -> AUTH 0x18 (server-first) -> AUTH 0x18
        (client-final) -> CONNACK 0x00 whose Authentication Data is the server-final
        "v=<ServerSignature>" we computed; the session then works."""
        for user, password, iterations in (("sam", "s3cret pw", 4096),
                                           ("it5k", "five thousand", 5000)):
            with self.subTest(user=user):
                c, s, auth, ack = self.scram(user, password)
                self.assertIsNotNone(auth, f"CONNACK instead of AUTH: {ack!r}")
                self.assertEqual(auth.reason_code, RC_CONTINUE_AUTHENTICATION)
                self.assertEqual(auth.properties.get("authentication_method"), SCRAM)
                self.assertEqual(s.server_first_attrs["i"], str(iterations))
                self.assertEqual(ack.reason_code, RC_SUCCESS, ack)
                self.assertEqual(ack.properties.get("authentication_method"), SCRAM)
                self.assertEqual(ack.properties.get("authentication_data"),
                                 s.expected_server_final.encode())
                topic = unique("scram/t")
                self.assertEqual(c.subscribe([(topic, 1)]).reason_codes, [1])
                c.publish(topic, b"after scram", qos=0)
                m = c.expect(PUBLISH)
                self.assertEqual((m.topic, m.payload), (topic, b"after scram"))

    def test_scram_wrong_password(self):
        """A wrong password: the exchange runs to the end and CONNACK refuses it (0x86, or
        0x87) without a server-final, then the broker closes."""
        c, _, auth, ack = self.scram("sam", "s3cret pW")
        self.assertIsNotNone(auth)
        self.assertIn(ack.reason_code, (RC_BAD_USERNAME_OR_PASSWORD, RC_NOT_AUTHORIZED))
        self.assertNotIn("authentication_data", ack.properties)
        self.assertIsNone(c.wait_closed(5))

    def test_scram_unknown_user_looks_like_a_known_one(self):
        """An unknown user gets a normal server-first (salt, 4096 iterations) and is refused
        only at the end, like a wrong password."""
        c, s, auth, ack = self.scram("nobody", "whatever")
        self.assertIsNotNone(auth, f"CONNACK instead of AUTH: {ack!r}")
        self.assertEqual(s.server_first_attrs["i"], "4096")
        self.assertIn(ack.reason_code, (RC_BAD_USERNAME_OR_PASSWORD, RC_NOT_AUTHORIZED))
        self.assertIsNone(c.wait_closed(5))

    def test_scram_for_a_user_without_scram_credentials(self):
        """A $7$ user cannot do SCRAM (the file has no SCRAM keys for it): refused; its
        password still works the plain way, and a SCRAM user's password works plainly too."""
        _, _, _, ack = self.scram("pbk", "pbk-pw")
        self.assertIn(ack.reason_code, (RC_BAD_USERNAME_OR_PASSWORD, RC_NOT_AUTHORIZED))
        self.connect(5, user="pbk", password="pbk-pw")
        self.connect(5, user="sam", password="s3cret pw")
        self.connect(4, user="sam", password="s3cret pw")

    def test_scram_tampered_nonce_refused(self):
        """A client-final whose nonce is not the combined one is refused."""
        _, _, auth, ack = self.scram("sam", "s3cret pw", tamper_nonce=True)
        self.assertIsNotNone(auth)
        self.assertIn(ack.reason_code, (RC_BAD_USERNAME_OR_PASSWORD, RC_NOT_AUTHORIZED))

    def test_unsupported_method_refused(self):
        """Authentication Method "PLAIN": CONNACK 0x8C (Bad authentication method), closed."""
        c = self.client()
        c.send(encode_connect(unique("plain"), properties={
            "authentication_method": "PLAIN", "authentication_data": b"\0sam\0s3cret pw"}))
        ack = c.expect(CONNACK)
        self.assertEqual(ack.reason_code, RC_BAD_AUTHENTICATION_METHOD)
        self.assertIsNone(c.wait_closed(5))

    def test_publish_instead_of_auth_is_a_protocol_error(self):
        """Between CONNECT and CONNACK only AUTH may come: a PUBLISH there is refused (0x82)."""
        c = self.client()
        s = ScramClient("sam", "s3cret pw")
        c.send(encode_connect(unique("ooo"), properties={
            "authentication_method": SCRAM, "authentication_data": s.client_first()}))
        self.assertEqual(c.expect(AUTH).reason_code, RC_CONTINUE_AUTHENTICATION)
        c.send(encode_publish("x/y", b"too early", qos=0))
        try:
            ack = c.expect(CONNACK)
        except ConnectionClosed:
            raise AssertionError("closed without a CONNACK (expected 0x82)") from None
        self.assertEqual(ack.reason_code, RC_PROTOCOL_ERROR)
        self.assertIsNone(c.wait_closed(5))

    def test_scram_counters(self):
        """A SCRAM success, a SCRAM failure and an unsupported method move their counters."""
        before = metrics(self.broker.http_port)
        self.assertEqual(self.scram("sam", "s3cret pw")[3].reason_code, RC_SUCCESS)
        self.assertNotEqual(self.scram("sam", "nope")[3].reason_code, RC_SUCCESS)
        c = self.client()
        c.send(encode_connect(unique("m"), properties={"authentication_method": "PLAIN"}))
        self.assertEqual(c.expect(CONNACK).reason_code, RC_BAD_AUTHENTICATION_METHOD)
        assert_metric_deltas(self, self.broker.http_port, before, {
            key("starling_auth_total", result="success"): 1,
            key("starling_auth_total", result="bad_credentials"): 1,
            key("starling_auth_total", result="method_refused"): 1,
        })


# ---------------------------------------------------------------------------------------------
# Re-authentication (MQTT 5.0 section 4.12.1)

def start_reauth(c, user, password, method=SCRAM):
    """Sends AUTH 0x19 with a client-first message; returns the client's SCRAM state."""
    s = ScramClient(user, password)
    c.send(encode_auth(RC_REAUTHENTICATE, {"authentication_method": method,
                                           "authentication_data": s.client_first()}))
    return s


def continue_reauth(test, c, s):
    """Answers the broker's AUTH 0x18 (server-first) with the client-final message."""
    challenge = c.expect(AUTH)
    test.assertEqual(challenge.reason_code, RC_CONTINUE_AUTHENTICATION, challenge)
    test.assertEqual(challenge.properties.get("authentication_method"), SCRAM)
    final = s.client_final(challenge.properties["authentication_data"])
    c.send(encode_auth(RC_CONTINUE_AUTHENTICATION, {"authentication_method": SCRAM,
                                                    "authentication_data": final}))


class Reauthentication(ScramTestCase):
    """A client connected with SCRAM-SHA-256 proves itself again without reconnecting."""

    def test_reauthentication_twice_while_messages_flow(self):
        """AUTH 0x19 (client-first) -> AUTH 0x18 (server-first) -> AUTH 0x18 (client-final)
        -> AUTH 0x00 whose data is the server-final we computed. A message published to itself
        between the steps is delivered meanwhile (the exchange does not stop the session),
        and a second re-authentication works as well."""
        c, _, _, ack = self.scram("sam", "s3cret pw")
        self.assertEqual(ack.reason_code, RC_SUCCESS)
        topic = unique("reauth/t")
        self.assertEqual(c.subscribe([(topic, 0)]).reason_codes, [0])
        before = metrics(self.broker.http_port)
        for round_ in range(2):
            s = start_reauth(c, "sam", "s3cret pw")
            c.publish(topic, f"during {round_}".encode())
            continue_reauth(self, c, s)
            done = c.expect(AUTH)
            self.assertEqual(done.reason_code, RC_SUCCESS, done)
            self.assertEqual(done.properties.get("authentication_method"), SCRAM)
            self.assertEqual(done.properties.get("authentication_data"),
                             s.expected_server_final.encode())
            m = c.expect(PUBLISH)
            self.assertEqual((m.topic, m.payload), (topic, f"during {round_}".encode()))
        c.publish(topic, b"after")
        self.assertEqual(c.expect(PUBLISH).payload, b"after")
        assert_metric_deltas(self, self.broker.http_port, before,
                             {key("starling_auth_total", result="success"): 2})

    def test_wrong_password_disconnects_with_0x87(self):
        """[MQTT-4.12.1-2] A failed re-authentication: DISCONNECT 0x87, then the broker closes;
        the failure is counted."""
        c, _, _, _ = self.scram("sam", "s3cret pw")
        before = metrics(self.broker.http_port)
        continue_reauth(self, c, start_reauth(c, "sam", "s3cret pW"))
        self.assertEqual(c.wait_closed(5), RC_NOT_AUTHORIZED)
        assert_metric_deltas(self, self.broker.http_port, before,
                             {key("starling_auth_total", result="bad_credentials"): 1})

    def test_another_user_is_refused(self):
        """Re-authenticating as a different user, with that user's right password, is refused
        (0x87): the session and its ACL belong to the user who connected."""
        c, _, _, _ = self.scram("sam", "s3cret pw")
        continue_reauth(self, c, start_reauth(c, "it5k", "five thousand"))
        self.assertEqual(c.wait_closed(5), RC_NOT_AUTHORIZED)

    def test_protocol_errors(self):
        """Protocol Error (0x82) for: AUTH 0x19 from a client that connected with a password,
        a different Authentication Method [MQTT-4.12.1-1], AUTH 0x18 with no re-authentication
        under way, and a second AUTH 0x19 before the first one finished."""
        plain = self.connect(5, user="sam", password="s3cret pw")
        start_reauth(plain, "sam", "s3cret pw")
        self.assertEqual(plain.wait_closed(5), RC_PROTOCOL_ERROR)

        other_method, _, _, _ = self.scram("sam", "s3cret pw")
        start_reauth(other_method, "sam", "s3cret pw", method="SCRAM-SHA-1")
        self.assertEqual(other_method.wait_closed(5), RC_PROTOCOL_ERROR)

        unasked, _, _, _ = self.scram("sam", "s3cret pw")
        unasked.send(encode_auth(RC_CONTINUE_AUTHENTICATION, {"authentication_method": SCRAM,
                                                             "authentication_data": b"c=biws"}))
        self.assertEqual(unasked.wait_closed(5), RC_PROTOCOL_ERROR)

        twice, _, _, _ = self.scram("sam", "s3cret pw")
        start_reauth(twice, "sam", "s3cret pw")
        self.assertEqual(twice.expect(AUTH).reason_code, RC_CONTINUE_AUTHENTICATION)
        start_reauth(twice, "sam", "s3cret pw")
        self.assertEqual(twice.wait_closed(5), RC_PROTOCOL_ERROR)


class ReauthenticationAfterReload(RawTestCase):

    def test_rotated_password_and_acl_apply_on_reauthentication(self):
        """Credentials rotate without reconnecting. sam may read a/#; then the password file
        gets a new password and the ACL takes reading a/# away and gives b/#, and SIGHUP
        reloads both. On one connection re-authenticating with the old password fails (0x87);
        on another the new password passes, after which the new rules hold: b/# may be
        subscribed, and a/x, published before a marker, is no longer delivered to its a/#
        subscription while the marker is."""
        self.broker = b = self.new_broker(start=False)
        pw = os.path.join(b.tmp, "passwd")
        acl = write(os.path.join(b.tmp, "acl"),
                    "user sam\ntopic readwrite a/#\ntopic readwrite marker/#\n")
        self.assertEqual(starling_passwd("-c", "-b", "--scram", pw, "sam", "old pw").returncode, 0)
        b.config_text = f'[auth]\npassword_file = "{pw}"\nacl_file = "{acl}"\n'
        b.start()
        self.port = b.port

        def scram(password):
            c, _, _, ack = scram_connect(self.port, "sam", password)
            self.addCleanup(c.close)
            self.assertEqual(ack.reason_code, RC_SUCCESS, ack)
            return c

        stays, leaves = scram("old pw"), scram("old pw")
        self.assertEqual(stays.subscribe([("a/#", 0), ("marker/#", 0), ("b/#", 0)]).reason_codes,
                         [0, 0, RC_NOT_AUTHORIZED])

        self.assertEqual(starling_passwd("-b", "--scram", pw, "sam", "new pw").returncode, 0)
        write(acl + ".new",
              "user sam\ntopic write a/#\ntopic readwrite b/#\ntopic readwrite marker/#\n")
        os.replace(acl + ".new", acl)
        self.assertEqual(sighup(b), "reloaded")

        continue_reauth(self, leaves, start_reauth(leaves, "sam", "old pw"))
        self.assertEqual(leaves.wait_closed(5), RC_NOT_AUTHORIZED)

        continue_reauth(self, stays, start_reauth(stays, "sam", "new pw"))
        self.assertEqual(stays.expect(AUTH).reason_code, RC_SUCCESS)
        self.assertEqual(stays.subscribe([("b/#", 0)]).reason_codes, [0])
        publisher = self.connect(5, user="sam", password="new pw")
        publisher.publish("a/x", b"no longer readable")
        publisher.publish("marker/m", b"marker")
        self.assertEqual(self.publishes_until(stays, "marker/m"), [("marker/m", b"marker")])


# ---------------------------------------------------------------------------------------------
# ACL files

ACL = """\
# Anonymous clients: the rules before the first user line.
topic read public/#
topic write anon/inbox

user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret/#

user bob
topic readwrite bob/#
topic readwrite shared/#
topic readwrite private/#

user admin
topic readwrite #
topic deny private/#

# Every client, wherever the line is.
pattern readwrite users/%u/#
pattern read clients/%c/#
pattern write clients/%c/out
"""

USERS = {"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"}


@unittest.skipUnless(HAVE_MOSQUITTO_PASSWD, "mosquitto_passwd is not installed")
class Acl(RawTestCase):
    """Mosquitto-format acl_file with users from a mosquitto_passwd file; anonymous clients are
    allowed on the listener so the anonymous section applies to them."""

    broker_scope = "class"
    broker_args = {"http": True}

    @classmethod
    def prepare_broker(cls, broker):
        cls.pwfile = os.path.join(broker.tmp, "passwd")
        cls.aclfile = write(os.path.join(broker.tmp, "acl"), ACL)
        mosquitto_passwd("-c", "-b", cls.pwfile, "alice", USERS["alice"])
        for user in ("bob", "admin"):
            mosquitto_passwd("-b", cls.pwfile, user, USERS[user])
        broker.config_text = (
            '[listeners.mqtt]\nbind = "127.0.0.1:1"\nallow_anonymous = true\n'
            f'[auth]\npassword_file = "{cls.pwfile}"\nacl_file = "{cls.aclfile}"\n')

    def user(self, name, version=5, client_id=None, **kw):
        return self.connect(version, user=name, password=USERS[name], client_id=client_id, **kw)

    def watcher(self, filters):
        """bob, subscribed (QoS 0) to filters he may read, to observe deliveries."""
        w = self.user("bob")
        ack = w.subscribe([(f, 0) for f in filters])
        self.assertEqual(ack.reason_codes, [0] * len(filters))
        return w

    def test_denied_publish_v5_puback_0x87_not_delivered(self):
        """alice publishes QoS 1 to bob/x (not hers): PUBACK 0x87 and bob does not get it; her
        QoS 2 publish there gets PUBREC 0x87; her publish to alice/x is acknowledged."""
        tag = unique("p")
        watch = self.user("admin")
        self.assertEqual(watch.subscribe([(f"bob/{tag}/#", 0), (f"alice/{tag}/#", 0)])
                         .reason_codes, [0, 0])
        alice = self.user("alice")
        pid = alice.publish(f"bob/{tag}/x", b"denied", qos=1)
        ack = alice.expect(PUBACK)
        self.assertEqual((ack.packet_id, ack.reason_code), (pid, RC_NOT_AUTHORIZED))
        pid = alice.publish(f"bob/{tag}/y", b"denied2", qos=2)
        rec = alice.expect(PUBREC)
        self.assertEqual((rec.packet_id, rec.reason_code), (pid, RC_NOT_AUTHORIZED))
        alice.publish(f"bob/{tag}/z", b"denied0", qos=0)
        pid = alice.publish(f"alice/{tag}/m", b"marker", qos=1)
        ack = alice.expect(PUBACK)
        self.assertEqual(ack.packet_id, pid)
        self.assertIn(ack.reason_code, (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS))
        self.assertEqual(self.publishes_until(watch, f"alice/{tag}/m"),
                         [(f"alice/{tag}/m", b"marker")])

    def test_denied_publish_v311_acknowledged_not_delivered(self):
        """3.1.1 has no reason code: the denied QoS 1 publish gets a plain PUBACK and is
        dropped."""
        tag = unique("p311")
        watch = self.user("admin")
        self.assertEqual(watch.subscribe([(f"bob/{tag}/#", 0), (f"alice/{tag}/#", 0)])
                         .reason_codes, [0, 0])
        alice = self.user("alice", version=4)
        pid = alice.publish(f"bob/{tag}/x", b"denied", qos=1)
        self.assertEqual(alice.expect(PUBACK).packet_id, pid)
        pid = alice.publish(f"bob/{tag}/y", b"denied2", qos=2)
        rec = alice.expect(PUBREC)
        self.assertEqual(rec.packet_id, pid)
        alice.pubrel(pid)
        self.assertEqual(alice.expect(PUBCOMP).packet_id, pid)
        pid = alice.publish(f"alice/{tag}/m", b"marker", qos=1)
        self.assertEqual(alice.expect(PUBACK).packet_id, pid)
        self.assertEqual(self.publishes_until(watch, f"alice/{tag}/m"),
                         [(f"alice/{tag}/m", b"marker")])

    def test_denied_subscribe(self):
        """alice may not subscribe to bob/#: SUBACK 0x87 (5.0) / 0x80 (3.1.1); a mixed
        SUBSCRIBE gets one code per filter; nothing from the refused filter arrives."""
        tag = unique("s")
        alice = self.user("alice")
        self.assertEqual(alice.subscribe([(f"bob/{tag}/#", 1)]).reason_codes,
                         [RC_NOT_AUTHORIZED])
        self.assertEqual(alice.subscribe([(f"alice/{tag}/#", 1), (f"bob/{tag}/+", 0)])
                         .reason_codes, [1, RC_NOT_AUTHORIZED])
        alice311 = self.user("alice", version=4)
        self.assertEqual(alice311.subscribe([(f"bob/{tag}/#", 1), (f"alice/{tag}/#", 1)])
                         .reason_codes, [V311_SUBACK_FAILURE, 1])
        self.assertEqual(alice311.subscribe([("#", 0)]).reason_codes, [V311_SUBACK_FAILURE])
        admin = self.user("admin")  # writes both; one publisher keeps the order
        admin.publish(f"bob/{tag}/x", b"not for alice", qos=0)
        admin.publish(f"alice/{tag}/m", b"marker", qos=0)
        self.assertEqual(self.publishes_until(alice, f"alice/{tag}/m"),
                         [(f"alice/{tag}/m", b"marker")])

    def test_patterns_with_username_and_client_id(self):
        """pattern users/%u/#: each user gets their own subtree only; pattern read/write with
        %c: the client's own clients/<id>/# is readable and clients/<id>/out writable."""
        tag = unique("u")
        alice = self.user("alice", client_id=f"dev-{tag}")
        self.assertEqual(alice.subscribe([("users/alice/#", 0), ("users/bob/#", 0),
                                          (f"clients/dev-{tag}/#", 0), ("clients/other/#", 0)])
                         .reason_codes, [0, RC_NOT_AUTHORIZED, 0, RC_NOT_AUTHORIZED])
        pid = alice.publish("users/bob/x", b"no", qos=1)
        self.assertEqual(alice.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        pid = alice.publish(f"clients/dev-{tag}/in", b"read only", qos=1)
        self.assertEqual(alice.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        pid = alice.publish(f"clients/dev-{tag}/out", b"own out", qos=1)
        ack = alice.expect(PUBACK)
        self.assertEqual(ack.packet_id, pid)
        self.assertIn(ack.reason_code, (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS))
        pid = alice.publish("users/alice/self", b"mine", qos=1)
        self.assertIn(alice.expect(PUBACK).reason_code, (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS))
        # Her own subscriptions got what she may write; the denied ones never came.
        self.assertEqual(self.publishes_until(alice, "users/alice/self"),
                         [(f"clients/dev-{tag}/out", b"own out"), ("users/alice/self", b"mine")])
        bob = self.user("bob")
        self.assertEqual(bob.subscribe([("users/bob/#", 0), ("users/alice/#", 0)]).reason_codes,
                         [0, RC_NOT_AUTHORIZED])

    def test_deny_rule(self):
        """alice reads shared/# except shared/secret/#: subscribing shared/# is granted (the
        deny covers only part of it) but messages on shared/secret/... are not delivered;
        subscribing shared/secret/# itself is refused; she cannot write shared/ at all."""
        tag = unique("d")
        alice = self.user("alice")
        self.assertEqual(alice.subscribe([("shared/#", 0)]).reason_codes, [0])
        self.assertEqual(alice.subscribe([(f"shared/secret/{tag}/#", 0)]).reason_codes,
                         [RC_NOT_AUTHORIZED])
        alice.publish(f"shared/{tag}", b"x", qos=1)
        self.assertEqual(alice.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        bob = self.user("bob")
        bob.publish(f"shared/secret/{tag}", b"secret", qos=0)
        bob.publish(f"shared/open/{tag}", b"open", qos=0)
        self.assertEqual(self.publishes_until(alice, f"shared/open/{tag}"),
                         [(f"shared/open/{tag}", b"open")])

    def test_read_acl_filters_a_hash_subscription(self):
        """admin may subscribe to # but reads nothing under private/: bob's private message
        is not delivered to him, the following one is, and acl_denied{read} counts it."""
        tag = unique("r")
        admin = self.user("admin")
        self.assertEqual(admin.subscribe([("#", 0)]).reason_codes, [0])
        self.assertEqual(admin.subscribe([(f"private/{tag}", 0)]).reason_codes,
                         [RC_NOT_AUTHORIZED])
        before = metrics(self.broker.http_port)
        bob = self.user("bob")
        bob.publish(f"private/{tag}", b"hidden", qos=0)
        bob.publish(f"bob/{tag}", b"visible", qos=0)
        got = self.publishes_until(admin, f"bob/{tag}")
        self.assertEqual([g for g in got if tag in g[0]], [(f"bob/{tag}", b"visible")])
        assert_metric_deltas(self, self.broker.http_port, before, {
            key("starling_acl_denied_total", action="read"): 1})

    def test_shared_subscriptions_are_checked_as_their_filter(self):
        """$share/<group>/F is allowed exactly when F is."""
        alice = self.user("alice")
        self.assertEqual(alice.subscribe([("$share/g/alice/#", 0), ("$share/g/bob/#", 0)])
                         .reason_codes, [0, RC_NOT_AUTHORIZED])

    def test_retained_messages_follow_the_read_acl(self):
        """Retained messages sent on subscribe obey the read rules: admin subscribing +/<tag>
        (granted: the private/# deny covers only part of it) gets bob/<tag> but not the
        retained private/<tag>."""
        tag = unique("ret")
        bob = self.user("bob")
        for topic, payload in ((f"private/{tag}", b"hidden"), (f"bob/{tag}", b"visible")):
            pid = bob.publish(topic, payload, qos=1, retain=True)
            self.assertEqual(bob.expect(PUBACK).packet_id, pid)
        self.addCleanup(self._clear_retained, tag)
        admin = self.user("admin")
        self.assertEqual(admin.subscribe([(f"+/{tag}", 0)]).reason_codes, [0])
        bob.publish(f"bob/{tag}", b"marker", qos=0)
        got = self.publishes_until(admin, f"bob/{tag}")
        if got == [(f"bob/{tag}", b"visible")]:  # the retained one came first; now the marker
            got += self.publishes_until(admin, f"bob/{tag}")
        self.assertEqual(got, [(f"bob/{tag}", b"visible"), (f"bob/{tag}", b"marker")])

    def _clear_retained(self, tag):
        bob = self.user("bob")
        for topic in (f"private/{tag}", f"bob/{tag}"):
            bob.publish(topic, b"", qos=1, retain=True)
            bob.expect(PUBACK)

    def test_hash_rule_gives_no_sys_access(self):
        """A readwrite # rule does not cover $SYS: subscribing $SYS/# is refused."""
        admin = self.user("admin")
        self.assertEqual(admin.subscribe([("$SYS/#", 0)]).reason_codes, [RC_NOT_AUTHORIZED])

    def test_anonymous_section(self):
        """Anonymous clients get the rules before the first user line (read public/#, write
        anon/inbox) plus the %c patterns, never the %u ones."""
        tag = unique("a")
        anon = self.connect(5, client_id=f"anon-{tag}")
        self.assertEqual(anon.subscribe([("public/#", 0), ("alice/#", 0), ("anon/inbox", 0),
                                         (f"clients/anon-{tag}/#", 0), ("users/+/x", 0)])
                         .reason_codes, [0, RC_NOT_AUTHORIZED, RC_NOT_AUTHORIZED, 0,
                                         RC_NOT_AUTHORIZED])
        anon.publish("public/x", b"ro", qos=1)
        self.assertEqual(anon.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        anon.publish("anon/inbox", b"hello", qos=1)
        self.assertIn(anon.expect(PUBACK).reason_code, (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS))
        anon311 = self.connect(4)
        self.assertEqual(anon311.subscribe([("public/#", 0), ("bob/#", 0)]).reason_codes,
                         [0, V311_SUBACK_FAILURE])

    def test_will_to_denied_topic_refuses_connect(self):
        """A will on a topic the client may not publish to: CONNACK 0x87 (5.0) / 5 (3.1.1);
        a will on an allowed topic connects."""
        will = {"topic": "bob/will", "payload": b"w", "qos": 1}
        self.refused(RC_NOT_AUTHORIZED, 5, user="alice", password=USERS["alice"], will=will)
        self.refused(V311_NOT_AUTHORIZED, 4, user="alice", password=USERS["alice"], will=will)
        self.refused(RC_NOT_AUTHORIZED, 5, will={"topic": "public/w", "payload": b"w"})
        self.user("alice", will={"topic": "alice/will", "payload": b"w", "qos": 1})
        self.connect(5, will={"topic": "anon/inbox", "payload": b"w"})

    def test_acl_counters(self):
        """acl_denied_total{publish} and {subscribe} count each denial (QoS 0 included)."""
        before = metrics(self.broker.http_port)
        alice = self.user("alice")
        alice.publish("bob/c1", b"x", qos=0)
        alice.publish("bob/c2", b"x", qos=1)
        self.assertEqual(alice.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        self.assertEqual(alice.subscribe([("bob/#", 0), ("users/bob/#", 0), ("alice/#", 0)])
                         .reason_codes, [RC_NOT_AUTHORIZED, RC_NOT_AUTHORIZED, 0])
        assert_metric_deltas(self, self.broker.http_port, before, {
            key("starling_acl_denied_total", action="publish"): 2,
            key("starling_acl_denied_total", action="subscribe"): 2,
        })


@unittest.skipUnless(HAVE_MOSQUITTO_PASSWD, "mosquitto_passwd is not installed")
class AclReload(RawTestCase):

    def test_sighup_changes_what_new_connections_may_do(self):
        """alice: alice/# before the reload; bob/# after it. A new connection after SIGHUP
        follows the new file; a malformed file on a later SIGHUP is refused (file:line in the
        log) and the previous rules stay."""
        self.broker = b = self.new_broker(start=False)
        pw = os.path.join(b.tmp, "passwd")
        acl = write(os.path.join(b.tmp, "acl"), "user alice\ntopic readwrite alice/#\n")
        mosquitto_passwd("-c", "-b", pw, "alice", "alice-pw")
        b.config_text = f'[auth]\npassword_file = "{pw}"\nacl_file = "{acl}"\n'
        b.start()
        self.port = b.port

        before = self.connect(user="alice", password="alice-pw")
        self.assertEqual(before.subscribe([("alice/#", 0), ("bob/#", 0)]).reason_codes,
                         [0, RC_NOT_AUTHORIZED])

        write(acl + ".new", "user alice\ntopic readwrite bob/#\n")
        os.replace(acl + ".new", acl)
        self.assertEqual(sighup(b), "reloaded")
        after = self.connect(user="alice", password="alice-pw")
        self.assertEqual(after.subscribe([("alice/#", 0), ("bob/#", 0)]).reason_codes,
                         [RC_NOT_AUTHORIZED, 0])
        after.publish("alice/x", b"x", qos=1)
        self.assertEqual(after.expect(PUBACK).reason_code, RC_NOT_AUTHORIZED)
        after.publish("bob/x", b"x", qos=1)
        self.assertIn(after.expect(PUBACK).reason_code, (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS))

        write(acl + ".new", "user alice\ntopic readwrite alice/#\nbogus line here\n")
        os.replace(acl + ".new", acl)
        verdict = sighup(b)
        self.assertNotEqual(verdict, "reloaded")
        self.assertIn(f"{acl}:3:", verdict)
        kept = self.connect(user="alice", password="alice-pw")
        self.assertEqual(kept.subscribe([("alice/#", 0), ("bob/#", 0)]).reason_codes,
                         [RC_NOT_AUTHORIZED, 0])


class AclAfterRestart(RawTestCase):

    def test_read_rules_apply_to_messages_queued_while_the_broker_had_no_rules_for_them(self):
        """sam may read a/# except a/secret/#. Its persistent session (a/#, QoS 1) survives a
        restart with nobody connected, so the broker has not compiled sam's rules when a/secret/x
        and then a/ok are published and queued. When sam reconnects it gets a/ok and never
        a/secret/x: the queue is checked against the rules at CONNECT (and counted)."""
        self.broker = b = self.new_broker(start=False, http=True)
        pw = os.path.join(b.tmp, "passwd")
        acl = write(os.path.join(b.tmp, "acl"), "user sam\ntopic read a/#\n"
                    "topic deny a/secret/#\nuser pub\ntopic write a/#\n")
        for user in ("sam", "pub"):
            args = ("-c",) if user == "sam" else ()
            self.assertEqual(starling_passwd(*args, "-b", pw, user, f"{user}-pw").returncode, 0)
        b.config_text = f'[auth]\npassword_file = "{pw}"\nacl_file = "{acl}"\n'
        b.start()
        self.port = b.port

        sam = self.client()
        ack = sam.connect("sam-device", clean_start=True, username="sam", password="sam-pw",
                          properties={"session_expiry_interval": 3600})
        self.assertEqual(ack.reason_code, RC_SUCCESS)
        self.assertEqual(sam.subscribe([("a/#", 1)]).reason_codes, [1])
        sam.disconnect()
        b.restart()
        self.port = b.port

        before = metrics(b.http_port)
        pub = self.connect(user="pub", password="pub-pw")
        for topic in ("a/secret/x", "a/ok"):
            pub.publish(topic, topic.encode(), qos=1)
            self.assertEqual(pub.expect(PUBACK).reason_code, RC_SUCCESS)

        again = self.client()
        ack = again.connect("sam-device", clean_start=False, username="sam", password="sam-pw",
                            properties={"session_expiry_interval": 3600})
        self.assertEqual((ack.reason_code, ack.session_present), (RC_SUCCESS, True))
        self.assertEqual(self.publishes_until(again, "a/ok"), [("a/ok", b"a/ok")])
        assert_metric_deltas(self, b.http_port, before,
                             {key("starling_acl_denied_total", action="read"): 1})


class UnverifiableUserName(RawTestCase):
    """allow_anonymous = false with no password file: a user name is a claim nothing can check,
    so a client sending one is refused like an anonymous one (0x87 / 5), never let in as that
    user (it used to be, with that user's ACL rules). With allow_anonymous = true the name is
    taken as given, as Mosquitto does."""

    def test_claimed_user_name_refused_where_anonymous_is_not_allowed(self):
        self.broker = b = self.new_broker(start=False, http=True)
        acl = write(os.path.join(b.tmp, "acl"), "user admin\ntopic readwrite #\n")
        open_port = free_port()
        b.config_text = (f'[listeners.mqtt]\nbind = "127.0.0.1:1"\nallow_anonymous = false\n'
                         f'[listeners.open]\nbind = "{HOST}:{open_port}"\n'
                         f'allow_anonymous = true\n[auth]\nacl_file = "{acl}"\n')
        b.start()
        wait_for_port(open_port, b.proc)
        self.port = b.port
        before = metrics(b.http_port)
        self.refused(RC_NOT_AUTHORIZED, 5, user="admin")
        self.refused(V311_NOT_AUTHORIZED, 4, user="admin", password="anything")
        self.refused(RC_NOT_AUTHORIZED, 5)
        assert_metric_deltas(self, b.http_port, before,
                             {key("starling_auth_total", result="anonymous_refused"): 3})
        # Where anonymous clients are welcome the name is a label, as in Mosquitto.
        self.connect(5, user="admin", port=open_port)


class AnonymousReload(RawTestCase):

    def test_allow_anonymous_changes_on_sighup(self):
        """allow_anonymous takes effect for the next CONNECT after SIGHUP, both ways."""
        self.broker = b = self.new_broker(start=False)
        pw = os.path.join(b.tmp, "passwd")
        r = starling_passwd("-c", "-b", pw, "u", "pw")
        self.assertEqual(r.returncode, 0, r.stderr)
        conf = '[listeners.mqtt]\nbind = "127.0.0.1:1"\nallow_anonymous = {}\n' \
               f'[auth]\npassword_file = "{pw}"\n'
        b.config_text = conf.format("true")
        b.start()
        self.port = b.port
        self.connect(5)
        write(os.path.join(b.tmp, "starling.toml"), conf.format("false"))
        self.assertEqual(sighup(b), "reloaded")
        self.refused(RC_NOT_AUTHORIZED, 5)
        self.connect(5, user="u", password="pw")
        write(os.path.join(b.tmp, "starling.toml"), conf.format("true"))
        self.assertEqual(sighup(b), "reloaded")
        self.connect(4)


# ---------------------------------------------------------------------------------------------
# Malformed files stop the start

class BadFilesFailAtStart(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="starling-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def config(self, auth_lines):
        return write(os.path.join(self.tmp, "starling.toml"), "[auth]\n" + auth_lines)

    def assert_fails_at(self, config_path, bad_file, line):
        for extra in ([], ["--check-config"]):
            with self.subTest(check_config=bool(extra)):
                code, out, err = run_until_exit(start_args(self.tmp, config_path) + extra)
                self.assertEqual(code, 2, f"stdout={out!r} stderr={err!r}")
                self.assertIn(f"{bad_file}:{line}:", err)

    def test_malformed_acl_lines(self):
        """An unknown directive, a topic line without a filter and an invalid filter each
        fail the start with exit 2 and "<acl file>:<line>:" on stderr."""
        cases = [("topic read a/#\nuser bob\nallow everything\n", 3),
                 ("# comment\n\ntopic read\n", 3),
                 ("user x\ntopic readwrite a/#/b\n", 2),
                 ("pattern write clients/%c/+x\n", 1),
                 ("user\n", 1)]
        for text, line in cases:
            with self.subTest(acl=text):
                acl = write(os.path.join(self.tmp, "acl"), text)
                self.assert_fails_at(self.config(f'acl_file = "{acl}"\n'), acl, line)

    def test_malformed_password_lines(self):
        """A line without ':', an unknown hash kind, bad base64 and a duplicate user each fail
        the start with exit 2 and "<password file>:<line>:"."""
        good = starling_passwd("-c", "-b", os.path.join(self.tmp, "good"), "ok", "pw")
        self.assertEqual(good.returncode, 0, good.stderr)
        good_line = read(os.path.join(self.tmp, "good")).strip()
        cases = [(f"{good_line}\nnocolon\n", 2),
                 (f"# c\n{good_line}\nu:$9$abc$def\n", 3),
                 ("u:$7$101$!!!notbase64$AAAA\n", 1),
                 (f"{good_line}\n\n{good_line}\n", 3),
                 (":$6$c2FsdA==$aGFzaA==\n", 1)]
        for text, line in cases:
            with self.subTest(passwd=text):
                pw = write(os.path.join(self.tmp, "pw"), text)
                self.assert_fails_at(self.config(f'password_file = "{pw}"\n'), pw, line)

    def test_missing_file(self):
        """A password_file that does not exist: exit 2, the config file's line named."""
        conf = self.config(f'password_file = "{self.tmp}/nope"\n')
        code, out, err = run_until_exit(start_args(self.tmp, conf))
        self.assertEqual(code, 2, err)
        self.assertIn(f"{conf}:2:", err)
        self.assertIn("No such file", err)


if __name__ == "__main__":
    unittest.main()
