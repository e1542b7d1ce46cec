"""Starling's command line and process behaviour (Starling only: Mosquitto has other flags).

--help, --version, --check-config with good and bad files (errors name file:line and the key);
SIGTERM/SIGINT stop cleanly (exit 0, 5.0 clients get DISCONNECT 0x8B, 3.1.1 sockets are
closed); SIGHUP reloads the config file and the broker keeps serving.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BrokerTestCase, against_mosquitto, check_no_sanitizer_report, unique
from mqtt_raw import DISCONNECT

HERE = os.path.dirname(os.path.abspath(__file__))


def project_version():
    """The version in the top-level CMakeLists.txt: project(starling VERSION x.y.z ...)."""
    with open(os.path.join(HERE, "..", "..", "CMakeLists.txt")) as f:
        return re.search(r"project\(starling\s+VERSION\s+([0-9.]+)", f.read()).group(1)


def run(*args, timeout=10):
    """Runs $STARLING_BIN with args; returns (exit code, stdout + stderr)."""
    r = subprocess.run([os.environ["STARLING_BIN"], *args], capture_output=True, text=True,
                       timeout=timeout)
    check_no_sanitizer_report(r.stdout + r.stderr, f"starling {' '.join(args)}")
    return r.returncode, r.stdout + r.stderr


@unittest.skipIf(against_mosquitto(), "Starling's own command line and signals")
class CommandLine(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="starling-cli-")
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_help_lists_options(self):
        """--help exits 0 and names every option."""
        code, out = run("--help")
        self.assertEqual(code, 0, out)
        for option in ("--config", "--bind", "--http", "--data", "--threads", "--log-level",
                       "--check-config", "--version"):
            self.assertIn(option, out)

    def test_version(self):
        """--version exits 0 and prints the project version."""
        code, out = run("--version")
        self.assertEqual(code, 0, out)
        self.assertIn(project_version(), out)

    def test_check_config_accepts_good_file(self):
        """--check-config on a valid file exits 0 (and does not start a broker)."""
        path = self.write("good.toml", 'log_level = "warn"\n\n[sys]\ninterval = 5\n\n'
                                       "[mqtt]\nmax_qos = 1\n\n[limits]\nmax_queued_messages = 100\n")
        code, out = run("--check-config", "--config", path)
        self.assertEqual(code, 0, out)

    def test_check_config_unknown_key_names_file_line_and_key(self):
        """An unknown key on line 3: non-zero exit, "bad.toml:3:" and the key's name."""
        path = self.write("bad.toml", "[mqtt]\nmax_qos = 1\nno_such_setting = 5\n")
        code, out = run("--check-config", "--config", path)
        self.assertNotEqual(code, 0, out)
        self.assertIn("bad.toml:3:", out)
        self.assertIn("no_such_setting", out)

    def test_check_config_bad_values_name_the_line(self):
        """A value out of range or of the wrong type names its line and key."""
        cases = [
            ("# limits\n[mqtt]\nmax_qos = 3\n", 3, "max_qos"),
            ('[limits]\nmax_queued_messages = "many"\n', 2, "max_queued_messages"),
            ('\n\nlog_level = "loud"\n', 3, "log_level"),
        ]
        for text, line, key in cases:
            with self.subTest(key=key):
                path = self.write("bad.toml", text)
                code, out = run("--check-config", "--config", path)
                self.assertNotEqual(code, 0, out)
                self.assertIn(f"bad.toml:{line}:", out)
                self.assertIn(key, out)

    def test_check_config_missing_file(self):
        """A config file that does not exist is an error naming the file."""
        code, out = run("--check-config", "--config", os.path.join(self.tmp.name, "nope.toml"))
        self.assertNotEqual(code, 0, out)
        self.assertIn("nope.toml", out)


@unittest.skipIf(against_mosquitto(), "Starling's own command line and signals")
class Signals(BrokerTestCase):
    broker_scope = "test"  # each test stops or reloads it
    broker_config = 'log_level = "info"\n'

    def test_sigterm_disconnects_clients_and_exits_0(self):
        """SIGTERM: a 5.0 client gets DISCONNECT 0x8B (Server shutting down) before the close,
        a 3.1.1 client's connection is closed (3.1.1 has no server DISCONNECT), exit code 0."""
        v5, v311 = self.raw_client(5), self.raw_client(4)
        code = self.broker.stop(signal.SIGTERM)
        self.assertEqual(code, 0, self.broker.log())
        got = v5.expect_closed(timeout=2.0)
        self.assertIsNot(got, False, "5.0 connection still open")
        self.assertIsNot(got, True, "5.0 connection closed without DISCONNECT")
        self.assertEqual((got.type, got.reason_code), (DISCONNECT, 0x8B))
        self.assertIs(v311.expect_closed(timeout=2.0), True)

    def test_sigint_exits_0(self):
        """SIGINT stops the broker cleanly too."""
        self.raw_client(5)
        self.assertEqual(self.broker.stop(signal.SIGINT), 0, self.broker.log())

    def write_config(self, text):
        with open(os.path.join(self.broker.tmp, "starling.toml"), "w") as f:
            f.write(text)

    def test_sighup_reloads_and_keeps_serving(self):
        """SIGHUP after changing the file (log_level, mqtt.max_qos): the broker keeps running
        and serving the existing client, new 5.0 clients see the new Maximum QoS in CONNACK,
        and the log mentions the reload."""
        before = self.raw_client(connect=False)
        self.assertNotIn("maximum_qos", before.connect(unique("hup")).properties)
        old = self.paho_client()
        old.subscribe("hup/t", 1)

        self.write_config('log_level = "debug"\n\n[mqtt]\nmax_qos = 1\n')
        self.broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reload" not in self.broker.log().lower() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("reload", self.broker.log().lower())
        self.assertIsNone(self.broker.proc.poll(), "broker exited on SIGHUP")

        after = self.raw_client(connect=False)
        connack = after.connect(unique("hup"))
        self.assertEqual((connack.reason_code, connack.properties.get("maximum_qos")), (0, 1))
        old.publish("hup/t", b"still serving", qos=1)
        self.assertEqual(old.get().payload, b"still serving")

    def test_sighup_with_bad_file_keeps_running_config(self):
        """SIGHUP with an invalid file: the broker logs file:line and the key, keeps running
        on the old configuration and keeps serving."""
        self.write_config('log_level = "info"\n[mqtt]\nbogus_key = 1\n')
        self.broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "bogus_key" not in self.broker.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = self.broker.log()
        self.assertIn("starling.toml:3:", log)
        self.assertIn("bogus_key", log)
        self.assertIsNone(self.broker.proc.poll(), "broker exited on SIGHUP")
        c = self.paho_client()
        self.assertEqual(c.subscribe("hup/bad", 2), [2])  # max_qos still 2
        c.publish("hup/bad", b"ok", qos=2)
        self.assertEqual(c.get().payload, b"ok")


if __name__ == "__main__":
    unittest.main()
