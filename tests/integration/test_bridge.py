"""Bridges to other MQTT brokers ([[bridges]], docs/bridges.md): against Debian's Mosquitto and
against a second Starling, with exact counts and order, the remote away under load, Starling
killed with messages queued, two brokers bridged both ways, TLS and refused credentials."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (HOST, Broker, MqttClient, dashboard_queries, exported_series, free_port,
                     http_get, scrape_metrics, series_in, unique, wait_for_port, wait_until)
from tls_certs import make_pki


class Mosquitto:
    """Debian's Mosquitto as the remote broker, on a free port, stopped by its pid."""

    def __init__(self, extra="", persistence=False, tls=None):
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="starling-bridge-mosq-")
        # Mosquitto started as root runs as the user "mosquitto": it must read its files and
        # write its persistence file here.
        os.chmod(self.tmp, 0o777)
        self.conf = os.path.join(self.tmp, "mosquitto.conf")
        self.log_path = os.path.join(self.tmp, "mosquitto.log")
        lines = [f"listener {self.port} {HOST}"]
        if tls:
            lines += [f"certfile {tls.server_cert}", f"keyfile {tls.server_key}"]
        lines += ["max_queued_messages 100000", "max_inflight_messages 100"]
        if persistence:
            lines += ["persistence true", f"persistence_location {self.tmp}/"]
        if "allow_anonymous" not in extra:
            lines.append("allow_anonymous true")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, self.proc)
        return self

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.proc = None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def readable(directory):
    """Lets Mosquitto (which drops root for the user "mosquitto") read the files there."""
    os.chmod(directory, 0o755)
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o644)


def bridge_config(name, port, topics, **keys):
    """A [[bridges]] entry to 127.0.0.1:port; topics: (pattern, direction, qos, local, remote)."""
    lines = ["[[bridges]]", f'name = "{name}"', f'addresses = ["{HOST}:{port}"]',
             "reconnect_min_ms = 100", "reconnect_max_ms = 1000"]
    for key, value in keys.items():
        lines.append(f"{key} = {json.dumps(value)}")
    for pattern, direction, qos, local, remote in topics:
        lines += ["[[bridges.topics]]", f'pattern = "{pattern}"', f'direction = "{direction}"',
                  f"qos = {qos}", f'local_prefix = "{local}"', f'remote_prefix = "{remote}"']
    return "\n".join(lines) + "\n"


def bridges(http_port):
    """GET /api/v1/bridges by name (the HTTP port opens a moment before the bridges start)."""
    def get():
        status, body = http_get(http_port, "/api/v1/bridges")
        assert status == 200, (status, body)
        return {b["name"]: b for b in json.loads(body)["bridges"]}
    return wait_until(get, 10, "the bridges listed")


def wait_connected(http_port, name, timeout=30):
    return wait_until(lambda: bridges(http_port)[name]["state"] == "connected" and
                      bridges(http_port)[name], timeout, f"bridge {name} connected")


def client(port, version=5, **kw):
    c = MqttClient(port, version=version, **kw)
    c.connect()
    return c


class BridgeTestCase(unittest.TestCase):
    def setUp(self):
        self.stack = []

    def tearDown(self):
        for thing in reversed(self.stack):
            if isinstance(thing, MqttClient):
                thing.close()
        for thing in reversed(self.stack):
            if isinstance(thing, (Broker, Mosquitto)):
                thing.stop()

    def keep(self, thing):
        self.stack.append(thing)
        return thing

    def mosquitto(self, **kw):
        return self.keep(Mosquitto(**kw).start())

    def starling(self, config):
        return self.keep(Broker(config_text=config, http=True).start())

    def client(self, port, version=5, **kw):
        return self.keep(client(port, version, **kw))


class TestDirectionsAgainstMosquitto(BridgeTestCase):
    """out, in and both, with prefixes, at QoS 0/1/2: every message once, in order."""

    def run_directions(self, protocol):
        remote = self.mosquitto()
        topics = [("#", "out", 2, "out/", "edge/"), ("#", "in", 2, "fromcloud/", "cloud/"),
                  ("shared/#", "both", 2, "", "")]
        local = self.starling(bridge_config("m", remote.port, topics, protocol=protocol))
        wait_connected(local.http_port, "m")
        at_remote = self.client(remote.port, version=4 if protocol == "3.1.1" else 5)
        at_remote.subscribe([("edge/#", 2), ("shared/#", 2)])
        here = self.client(local.port)
        here.subscribe([("fromcloud/#", 2), ("shared/#", 2)])
        pub_here = self.client(local.port)
        pub_remote = self.client(remote.port, version=4 if protocol == "3.1.1" else 5)
        n = 30
        for qos in (0, 1, 2):
            for i in range(n):
                pub_here.publish(f"out/q{qos}/a", f"{qos}-{i}".encode(), qos=qos)
            got = at_remote.collect(n, timeout=20)
            self.assertEqual([(m.topic, m.payload) for m in got],
                             [(f"edge/q{qos}/a", f"{qos}-{i}".encode()) for i in range(n)])
            self.assertTrue(all(m.qos == qos for m in got), [m.qos for m in got])
            for i in range(n):
                pub_remote.publish(f"cloud/q{qos}/b", f"{qos}-{i}".encode(), qos=qos)
            got = here.collect(n, timeout=20)
            self.assertEqual([(m.topic, m.payload) for m in got],
                             [(f"fromcloud/q{qos}/b", f"{qos}-{i}".encode()) for i in range(n)])
        # both: each side's publish reaches the other once, and does not come back.
        pub_here.publish("shared/x", b"from-here", qos=1)
        pub_remote.publish("shared/y", b"from-remote", qos=1)
        got_remote = sorted((m.topic, m.payload) for m in at_remote.collect(2, timeout=20))
        got_here = sorted((m.topic, m.payload) for m in here.collect(2, timeout=20))
        expected = [("shared/x", b"from-here"), ("shared/y", b"from-remote")]
        self.assertEqual(got_remote, expected)
        self.assertEqual(got_here, expected)
        at_remote.expect_nothing(1.0)
        here.expect_nothing(0.5)
        info = bridges(local.http_port)["m"]
        self.assertEqual(info["sent"], 3 * n + 1)
        self.assertEqual(info["received"], 3 * n + 1)
        self.assertEqual(info["queued"], 0)
        self.assertEqual(info["last_error"], "")

    def test_mqtt5(self):
        self.run_directions("5.0")

    def test_mqtt311_with_bridge_flag(self):
        self.run_directions("3.1.1")

    def test_retained_and_properties_pass_through_starling(self):
        remote = self.starling("")
        local = self.starling(bridge_config("s", remote.port, [("#", "out", 1, "", "")]))
        wait_connected(local.http_port, "s")
        sub = self.client(remote.port)
        sub.subscribe("p/#", options=_options(qos=1, rap=True))
        pub = self.client(local.port)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("k", "v")]
        props.ContentType = "text/plain"
        props.ResponseTopic = "reply/here"
        props.CorrelationData = b"corr"
        props.MessageExpiryInterval = 3600
        pub.publish("p/1", b"x", qos=1, retain=True, properties=props)
        m = sub.get(timeout=20)
        self.assertEqual((m.topic, m.payload, m.retain), ("p/1", b"x", True))
        self.assertEqual(m.properties.UserProperty, [("k", "v")])
        self.assertEqual(m.properties.ContentType, "text/plain")
        self.assertEqual(m.properties.ResponseTopic, "reply/here")
        self.assertEqual(m.properties.CorrelationData, b"corr")
        self.assertLessEqual(m.properties.MessageExpiryInterval, 3600)
        # Retained at the remote too.
        late = self.client(remote.port)
        late.subscribe("p/#", qos=1)
        self.assertEqual(late.get(timeout=10).payload, b"x")


def _options(qos, rap=False, no_local=False):
    from paho.mqtt.subscribeoptions import SubscribeOptions
    return SubscribeOptions(qos=qos, retainAsPublished=rap, noLocal=no_local)


class TestNothingLost(BridgeTestCase):
    def persistent_subscriber(self, port, filter_, qos, client_id):
        c = MqttClient(port, version=4, client_id=client_id, clean=False)
        c.connect()
        c.subscribe(filter_, qos=qos)
        return c

    def run_remote_restart(self, qos, remote_kind):
        remote = self.mosquitto(persistence=True) if remote_kind == "mosquitto" else \
            self.starling("")
        local = self.starling(bridge_config("m", remote.port, [("#", "out", qos, "", "")],
                                            protocol="3.1.1"))
        wait_connected(local.http_port, "m")
        sub_id = unique("sub")
        # One paho client object throughout: what it took before the restart (queued, or a QoS 2
        # message it PUBREC'd and waits to see released) stays with it, as it would with a real
        # persistent client.
        sub = self.keep(self.persistent_subscriber(remote.port, "load/#", qos, sub_id))
        n = 600
        pub = self.client(local.port)
        done = threading.Event()

        def publish_all():
            for i in range(n):
                pub.publish("load/x", str(i).encode(), qos=qos, timeout=30)
            done.set()

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        got = []
        got.extend(sub.collect(100, timeout=30))
        sub.close()
        remote.stop()  # the remote goes away under load
        time.sleep(1.0)
        remote.start()
        sub.port = remote.port
        sub.connect()
        publisher.join(timeout=120)
        self.assertTrue(done.is_set(), "the publisher did not finish")
        got.extend(sub.drain(wait=3.0) if qos == 1 else [])
        if qos == 2:
            got.extend(sub.collect(n - len(got), timeout=60))
            sub.expect_nothing(1.5)
        payloads = [int(m.payload) for m in got]
        self.assertEqual(set(payloads), set(range(n)), "messages lost across the restart")
        if qos == 2:
            self.assertEqual(len(payloads), n, "QoS 2 delivered more than once")
        info = wait_connected(local.http_port, "m")
        self.assertGreaterEqual(info["connects"], 2)

    def test_mosquitto_restart_qos1(self):
        self.run_remote_restart(1, "mosquitto")

    def test_starling_restart_qos1(self):
        self.run_remote_restart(1, "starling")

    def test_starling_restart_qos2(self):
        # Against Mosquitto 2.0.11 as the remote, the bridge had every one of 600 QoS 2 messages
        # acknowledged (PUBCOMP) and the persistent subscriber there still got only about half
        # after Mosquitto's restart: what is lost there is Mosquitto's, so QoS 2 is checked end to
        # end with a Starling remote, whose store keeps the subscriber's queue.
        self.run_remote_restart(2, "starling")

    def test_kill9_with_messages_queued(self):
        remote = self.mosquitto(persistence=True)
        # A persistent subscriber at the remote, offline while the messages travel: Mosquitto
        # keeps what arrives for it (its session is saved when it stops).
        sub_id = unique("sub")
        self.persistent_subscriber(remote.port, "site/#", 2, sub_id).close()
        remote.stop()
        local = self.starling(bridge_config("m", remote.port, [("#", "out", 2, "", "site/")]))
        pub = self.client(local.port)
        n = 200
        for i in range(n):
            pub.publish("q/x", str(i).encode(), qos=1 + i % 2)
        info = bridges(local.http_port)["m"]
        self.assertEqual((info["queued"], info["state"]), (n, "backoff"))
        local.kill9()
        local.start()
        info = bridges(local.http_port)["m"]
        self.assertEqual(info["queued"] + info["inflight"], n)
        remote.start()
        wait_until(lambda: bridges(local.http_port)["m"]["queued"] == 0 and
                   bridges(local.http_port)["m"]["inflight"] == 0, 60, "queue sent")
        sub = self.keep(MqttClient(remote.port, version=4, client_id=sub_id, clean=False))
        sub.connect()
        got = sub.collect(n, timeout=30)
        self.assertEqual(sorted(int(m.payload) for m in got), list(range(n)))
        # In order per QoS class: one session's queue keeps the order it was published in.
        self.assertEqual([int(m.payload) for m in got if m.qos == 2],
                         [i for i in range(n) if i % 2 == 1])
        sub.expect_nothing(1.0)


    def test_incoming_while_the_bridge_is_down(self):
        """The bridge's session at the remote keeps what is published there while Starling is
        stopped: it arrives after the restart, in order."""
        remote = self.mosquitto()
        local = self.starling(bridge_config("m", remote.port, [("#", "in", 1, "here/", "there/")]))
        wait_connected(local.http_port, "m")
        sub_id = unique("sub")
        self.persistent_subscriber(local.port, "here/#", 1, sub_id).close()
        local.stop()
        pub = self.client(remote.port)
        n = 50
        for i in range(n):
            pub.publish("there/x", str(i).encode(), qos=1)
        local.start()
        sub = self.keep(MqttClient(local.port, version=4, client_id=sub_id, clean=False))
        sub.connect()
        got = sub.collect(n, timeout=30)
        self.assertEqual([int(m.payload) for m in got], list(range(n)))

    def test_power_cut_with_messages_queued(self):
        from power_cut import PowerCutDisk
        remote = self.mosquitto(persistence=True)
        sub_id = unique("sub")
        self.persistent_subscriber(remote.port, "site/#", 2, sub_id).close()
        remote.stop()
        with PowerCutDisk() as disk:
            local = Broker(config_text=bridge_config("m", remote.port, [("#", "out", 2, "", "site/")]),
                           http=True, data_dir=os.path.join(disk.path, "data"))
            local.start()
            try:
                pub = client(local.port)
                n = 100
                for i in range(n):  # each acknowledged once it is in the bridge's queue on disk
                    pub.publish("q/x", str(i).encode(), qos=1 + i % 2)
                pub.close()
                local.kill9()
                disk.cut()  # only what was synced is left
                local.start()
                info = bridges(local.http_port)["m"]
                self.assertEqual(info["queued"] + info["inflight"], n)
                remote.start()
                wait_until(lambda: bridges(local.http_port)["m"]["queued"] == 0 and
                           bridges(local.http_port)["m"]["inflight"] == 0, 60, "queue sent")
            finally:
                local.stop()
        sub = self.keep(MqttClient(remote.port, version=4, client_id=sub_id, clean=False))
        sub.connect()
        got = sub.collect(n, timeout=30)
        self.assertEqual(sorted(int(m.payload) for m in got), list(range(n)))


class TestIdentityAndReload(BridgeTestCase):
    def test_incoming_messages_pass_the_acl_as_the_bridge(self):
        tmp = tempfile.mkdtemp(prefix="starling-bridge-acl-")
        acl = os.path.join(tmp, "acl")
        with open(acl, "w") as f:
            f.write("topic read fromcloud/#\n\nuser edge-bridge\ntopic write fromcloud/ok/#\n")
        remote = self.mosquitto()
        local = self.starling(f'[auth]\nacl_file = "{acl}"\n' + bridge_config(
            "m", remote.port, [("#", "in", 1, "fromcloud/", "cloud/")],
            local_username="edge-bridge"))
        wait_connected(local.http_port, "m")
        here = self.client(local.port)
        here.subscribe("fromcloud/#", qos=1)
        pub = self.client(remote.port)
        pub.publish("cloud/secret/1", b"no", qos=1)
        pub.publish("cloud/ok/1", b"yes", qos=1)
        m = here.get(timeout=20)
        self.assertEqual((m.topic, m.payload), ("fromcloud/ok/1", b"yes"))
        here.expect_nothing(1.0)
        info = bridges(local.http_port)["m"]
        self.assertEqual((info["state"], info["received"], info["connects"]), ("connected", 2, 1))

    def test_sighup_applies_changed_and_new_bridges(self):
        remote = self.mosquitto()
        local = self.starling(bridge_config("a", remote.port, [("#", "out", 1, "", "old/")]))
        wait_connected(local.http_port, "a")
        at_remote = self.client(remote.port)
        at_remote.subscribe([("old/#", 1), ("new/#", 1), ("second/#", 1)])
        pub = self.client(local.port)
        pub.publish("t", b"1", qos=1)
        self.assertEqual(at_remote.get(timeout=20).topic, "old/t")
        with open(os.path.join(local.tmp, "starling.toml"), "w") as f:
            f.write(bridge_config("a", remote.port, [("#", "out", 1, "", "new/")]) +
                    bridge_config("b", remote.port, [("x/#", "out", 1, "", "second/")],
                                  client_id=unique("second")))
        local.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "b" in bridges(local.http_port) and
                   bridges(local.http_port)["b"]["state"] == "connected" and
                   bridges(local.http_port)["a"]["state"] == "connected", 30, "reloaded")
        pub.publish("t", b"2", qos=1)
        pub.publish("x/y", b"3", qos=1)
        got = sorted((m.topic, m.payload) for m in at_remote.collect(3, timeout=20))
        # "x/y" matches both bridges' rules: each sends it once.
        self.assertEqual(got, [("new/t", b"2"), ("new/x/y", b"3"), ("second/x/y", b"3")])
        at_remote.expect_nothing(1.0)


class TestLoops(BridgeTestCase):
    def run_both_ways(self, protocol):
        b = self.starling("")
        a = self.starling(bridge_config("b", b.port, [("#", "both", 1, "", "")],
                                        protocol=protocol))
        wait_connected(a.http_port, "b")
        sub_a = self.client(a.port)
        sub_a.subscribe("t/#", qos=1)
        sub_b = self.client(b.port)
        sub_b.subscribe("t/#", qos=1)
        self.client(a.port).publish("t/1", b"on-a", qos=1)
        self.client(b.port).publish("t/2", b"on-b", qos=1)
        for s in (sub_a, sub_b):
            got = sorted((m.topic, m.payload) for m in s.collect(2, timeout=20))
            self.assertEqual(got, [("t/1", b"on-a"), ("t/2", b"on-b")])
            s.expect_nothing(1.5)  # no echo
        info = bridges(a.http_port)["b"]
        self.assertEqual((info["sent"], info["received"]), (1, 1))

    def test_two_starlings_both_ways_mqtt5(self):
        self.run_both_ways("5.0")

    def test_two_starlings_both_ways_mqtt311(self):
        self.run_both_ways("3.1.1")

    def test_mosquitto_bridge_to_starling_both_ways(self):
        """Starling as the remote of Mosquitto's own bridge (3.1.1 with its bridge flag): what
        the bridge publishes does not come back to it."""
        remote = self.starling("")
        local = self.keep(Mosquitto(extra=f"connection s\naddress {HOST}:{remote.port}\n"
                                          "topic t/# both 1\nrestart_timeout 1\n").start())
        sub_remote = self.client(remote.port)
        sub_remote.subscribe("t/#", qos=1)
        sub_local = self.client(local.port, version=4)
        sub_local.subscribe("t/#", qos=1)
        # Mosquitto's bridge subscribes at Starling once it is connected.
        wait_until(lambda: any(c["client_id"].endswith(".s") for c in json.loads(
            http_get(remote.http_port, "/api/v1/clients")[1])["clients"]), 30, "bridge in")
        time.sleep(0.5)
        self.client(local.port, version=4).publish("t/1", b"on-mosquitto", qos=1)
        self.client(remote.port).publish("t/2", b"on-starling", qos=1)
        for s in (sub_local, sub_remote):
            got = sorted((m.topic, m.payload) for m in s.collect(2, timeout=20))
            self.assertEqual(got, [("t/1", b"on-mosquitto"), ("t/2", b"on-starling")])
            s.expect_nothing(1.5)

    def test_bridge_client_ids_are_reserved(self):
        b = self.starling("")
        c = MqttClient(b.port, client_id="$bridge/x")
        self.keep(c)
        c.connect(expect_rc=0x85)


class TestTlsAndRefusals(BridgeTestCase):
    def test_tls_with_throwaway_ca_and_wrong_ca(self):
        pki_dir = tempfile.mkdtemp(prefix="starling-bridge-pki-")
        pki = make_pki(pki_dir)
        readable(pki_dir)
        remote = self.mosquitto(tls=pki)
        good = bridge_config("good", remote.port, [("#", "out", 1, "", "")], tls=True,
                             tls_ca=pki.ca_cert, tls_server_name="localhost")
        wrong = bridge_config("wrong", remote.port, [("#", "out", 1, "", "")], tls=True,
                              tls_ca=pki.other_ca_cert, tls_server_name="localhost")
        local = self.starling(good + wrong)
        wait_connected(local.http_port, "good")
        info = wait_until(lambda: bridges(local.http_port)["wrong"]["connect_failures"] >= 2 and
                          bridges(local.http_port)["wrong"], 30, "wrong CA fails")
        self.assertNotEqual(info["state"], "connected")
        self.assertIn("certificate verify failed", info["last_error"])
        samples = scrape_metrics(local.http_port)
        self.assertGreaterEqual(
            samples[("starling_bridge_connect_failures_total",
                     (("bridge", "wrong"), ("reason", "tls")))], 2)
        self.assertEqual(samples[("starling_bridge_connected", (("bridge", "good"),))], 1)
        self.assertIn("certificate verify failed", local.log())
        # The dashboard's bridge row queries only series a broker with bridges exports.
        used = series_in(dashboard_queries(), "starling_bridge_")
        self.assertGreater(len(used), 4)
        status, body = http_get(local.http_port, "/metrics")
        self.assertEqual(used - exported_series(body.decode()), set())
        status, body = http_get(local.http_port, "/readyz")
        self.assertEqual(status, 200)
        self.assertIn("good: connected", json.loads(body)["checks"]["bridges"])

    def test_refused_credentials_back_off(self):
        tmp = tempfile.mkdtemp(prefix="starling-bridge-pw-")
        pwfile = os.path.join(tmp, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pwfile, "edge", "right"], check=True,
                       capture_output=True)
        readable(tmp)
        remote = self.mosquitto(extra=f"allow_anonymous false\npassword_file {pwfile}\n")
        local = self.starling(bridge_config("m", remote.port, [("#", "out", 1, "", "")],
                                            username="edge", password="wrong"))
        info = wait_until(lambda: bridges(local.http_port)["m"]["connect_failures"] >= 3 and
                          bridges(local.http_port)["m"], 30, "refusals")
        self.assertIn("refused the connection", info["last_error"])
        self.assertNotEqual(info["state"], "connected")
        # Backoff, not a busy loop: the delay doubles up to 1 s, so 4 s hold a handful of
        # attempts where a loop without backoff makes thousands.
        first = info["connect_failures"]
        time.sleep(4.0)
        later = bridges(local.http_port)["m"]
        self.assertLess(later["connect_failures"] - first, 30)
        self.assertEqual(later["failures_by_reason"].get("refused"), later["connect_failures"])

    def test_bad_bridge_config_fails_with_line(self):
        binary = os.environ["STARLING_BIN"]
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[[bridges]]\nname = "x"\naddresses = ["127.0.0.1:99999"]\n')
            path = f.name
        r = subprocess.run([binary, "--check-config", "--config", path], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{path}:3", r.stderr)
        self.assertIn("port", r.stderr)


if __name__ == "__main__":
    unittest.main()
