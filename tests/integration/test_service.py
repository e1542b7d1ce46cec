"""The broker under a service manager: systemd's notify protocol and journal logging.

A datagram socket stands in for systemd's NOTIFY_SOCKET: the broker says READY=1 once its
listeners accept connections, RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 on
SIGTERM, and WATCHDOG=1 while its loops answer (WATCHDOG_USEC set). With JOURNAL_STREAM naming
its stdout, log lines carry the syslog priority prefix journald reads ("<4>" a warning).
"""

import os
import signal
import socket
import tempfile
import threading
import time
import unittest

from harness import Broker, against_mosquitto

TIMEOUT = 30.0  # a hang guard, not a speed limit


class NotifySocket:
    """Collects the datagrams sent to a unix socket, as systemd's NOTIFY_SOCKET does."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="starling-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # each a dict of its KEY=value lines
        self.cond = threading.Condition()
        self.stopping = False
        self.on_message = None  # called with each message, on the reader thread
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopping:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            if self.on_message:
                self.on_message(fields)
            with self.cond:
                self.messages.append(fields)
                self.cond.notify_all()

    def wait_for(self, predicate, what, start=0):
        """The index of the first message at or after `start` matching predicate."""
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    if predicate(self.messages[i]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {TIMEOUT}s; got {self.messages}")
                self.cond.wait(left)

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@unittest.skipIf(against_mosquitto(), "Starling's own service manager protocol")
class ServiceManagerTest(unittest.TestCase):

    def start_broker(self, config_text, env):
        broker = Broker(config_text=config_text, env=env)
        self.addCleanup(lambda: broker.proc and broker.stop())
        return broker

    def test_ready_reload_watchdog_and_stop(self):
        notify = NotifySocket()
        self.addCleanup(notify.close)
        broker = self.start_broker("[storage]\ndurability = \"batch\"\n",
                                   {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
        # READY=1 only once the listener is bound: checked the moment it arrives.
        ready_and_serving = []
        notify.on_message = lambda m: (m.get("READY") == "1" and
                                       ready_and_serving.append(accepts(broker.port)))
        broker.start()
        ready = notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
        self.assertEqual(ready_and_serving[:1], [True])
        self.assertEqual(notify.messages[ready].get("STATUS"), "serving")
        notify.on_message = None

        # The watchdog: pinged every half of WATCHDOG_USEC while the loops answer.
        first = notify.wait_for(lambda m: m.get("WATCHDOG") == "1", "WATCHDOG=1")
        notify.wait_for(lambda m: m.get("WATCHDOG") == "1", "a second WATCHDOG=1", first + 1)

        broker.proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
        again = notify.wait_for(lambda m: m.get("READY") == "1", "READY=1 after the reload",
                                reloading + 1)
        self.assertIn("reloaded", notify.messages[again].get("STATUS", ""))
        self.assertTrue(accepts(broker.port))

        self.assertEqual(broker.stop(), 0)
        notify.wait_for(lambda m: m.get("STOPPING") == "1", "STOPPING=1")

    def test_a_bad_reload_is_reported_and_the_broker_stays_ready(self):
        notify = NotifySocket()
        self.addCleanup(notify.close)
        broker = self.start_broker("log_level = \"info\"\n", {"NOTIFY_SOCKET": notify.path})
        broker.start()
        notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
        with open(os.path.join(broker.tmp, "starling.toml"), "w") as f:
            f.write("log_level = 5\n")  # wrong type: not reloaded
        broker.proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
        again = notify.wait_for(lambda m: m.get("READY") == "1", "READY=1 after the reload",
                                reloading + 1)
        self.assertIn("not reloaded", notify.messages[again].get("STATUS", ""))
        self.assertIn("starling.toml", notify.messages[again].get("STATUS", ""))
        self.assertTrue(accepts(broker.port))

    def test_no_watchdog_pings_unless_asked(self):
        notify = NotifySocket()
        self.addCleanup(notify.close)
        broker = self.start_broker(None, {"NOTIFY_SOCKET": notify.path})
        broker.start()
        notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
        self.assertEqual(broker.stop(), 0)
        notify.wait_for(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
        self.assertFalse(any("WATCHDOG" in m for m in notify.messages), notify.messages)


@unittest.skipIf(against_mosquitto(), "Starling's own log format")
class JournalLoggingTest(unittest.TestCase):

    def test_lines_carry_their_priority_for_journald(self):
        broker = Broker(config_text="[storage]\ndurability = \"none\"\n")
        self.addCleanup(lambda: broker.proc and broker.stop())
        # systemd sets JOURNAL_STREAM to the device and inode of the stream it gives stdout.
        open(broker.log_path, "ab").close()
        st = os.stat(broker.log_path)
        broker.env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        broker.start()
        broker.proc.send_signal(signal.SIGUSR1)  # no store to back up: a warning
        deadline = time.monotonic() + TIMEOUT
        while "no store to back up" not in broker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = broker.log().splitlines()
        self.assertTrue(any(line.startswith("<6>info starling ") for line in lines), lines)
        self.assertTrue(any(line.startswith("<4>warning SIGUSR1: no store to back up")
                            for line in lines), lines)
        self.assertEqual(broker.stop(), 0)

    def test_plain_lines_elsewhere(self):
        broker = Broker(config_text="[storage]\ndurability = \"none\"\n",
                        env={"JOURNAL_STREAM": "1:2"})  # names another stream
        self.addCleanup(lambda: broker.proc and broker.stop())
        broker.start()
        first = broker.log().splitlines()[0]
        self.assertRegex(first, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} info starling ")
        self.assertEqual(broker.stop(), 0)


if __name__ == "__main__":
    unittest.main()
