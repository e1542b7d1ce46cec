"""Durable state: what the broker acknowledged survives kill -9.

Restart tests check each kind of state on its own; the crash test kills the broker several
times at random moments under QoS 1 and QoS 2 load (durability_load.py) and then checks that
every message acknowledged to a publisher reached every persistent subscriber, with duplicates
only at QoS 1, retained topics and a delayed will intact. test_power_cut.py runs the same load
through power cuts. Starling-specific (durability modes, store layout); skipped against Mosquitto, whose
snapshots lose what came after the last one.
"""

import os
import random
import signal
import subprocess
import time
import unittest

from durability_load import LoadWithFaults, connect
from harness import Broker, against_mosquitto, check_no_sanitizer_report
from mqtt_raw import PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, RawClient


def drain_publishes(client, quiet=1.0, timeout=15.0):
    """Acks and returns the payloads of every PUBLISH until nothing came for `quiet` s."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = client.recv_packet(quiet)
        if p is None:
            break
        if p.type == PUBLISH:
            got.append(p.payload)
            if p.qos == 1:
                client.puback(p.packet_id)
            elif p.qos == 2:
                client.pubrec(p.packet_id)
        elif p.type == PUBREL:
            client.pubcomp(p.packet_id)
    return got


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class RestartKeepsState(unittest.TestCase):
    def test_offline_queue_and_subscription_survive_kill9(self):
        """QoS 1 messages acknowledged while the subscriber was offline are delivered, in
        order, after kill -9 and a restart; the session and its subscription are back."""
        with Broker() as b:
            sub, _ = connect(b.port, "dur-sub", clean=True)
            sub.subscribe([("dur/a", 1)])
            sub.disconnect()
            sub.close()
            pub, _ = connect(b.port, "dur-pub", clean=True)
            for i in range(50):
                pid = pub.publish("dur/a", f"m{i}".encode(), qos=1)
                self.assertEqual(pub.expect(PUBACK).packet_id, pid)
            b.kill9()
            b.start()
            sub, ack = connect(b.port, "dur-sub")
            self.assertTrue(ack.session_present)
            self.assertEqual(drain_publishes(sub), [f"m{i}".encode() for i in range(50)])
            # The subscription itself came back too: a new message is delivered live.
            pub2, _ = connect(b.port, "dur-pub2", clean=True)
            pub2.publish("dur/a", b"live", qos=1)
            pub2.expect(PUBACK)
            self.assertEqual(drain_publishes(sub), [b"live"])

    def test_retained_survives_kill9(self):
        with Broker() as b:
            pub, _ = connect(b.port, "ret-pub", clean=True)
            pub.publish("dur/retained", b"kept", qos=1, retain=True)
            pub.expect(PUBACK)
            pub.publish("dur/deleted", b"x", qos=1, retain=True)
            pub.expect(PUBACK)
            pub.publish("dur/deleted", b"", qos=1, retain=True)
            pub.expect(PUBACK)
            b.kill9()
            b.start()
            sub, _ = connect(b.port, "ret-sub", clean=True)
            sub.subscribe([("dur/#", 1)])
            self.assertEqual(drain_publishes(sub), [b"kept"])

    def test_qos2_packet_id_survives_kill9(self):
        """A QoS 2 PUBLISH acknowledged with PUBREC and retransmitted (DUP) after a crash is
        not delivered twice; its PUBREL is answered with PUBCOMP 0."""
        with Broker() as b:
            sub, _ = connect(b.port, "q2-sub", clean=True)
            sub.subscribe([("dur/q2", 2)])
            sub.disconnect()
            sub.close()
            pub, _ = connect(b.port, "q2-pub", clean=True)
            pub.publish("dur/q2", b"once", qos=2, packet_id=7)
            self.assertEqual(pub.expect(PUBREC).packet_id, 7)
            b.kill9()
            b.start()
            pub, ack = connect(b.port, "q2-pub")
            self.assertTrue(ack.session_present)
            pub.publish("dur/q2", b"once", qos=2, packet_id=7, dup=True)
            self.assertEqual(pub.expect(PUBREC).packet_id, 7)
            pub.pubrel(7)
            comp = pub.expect(PUBCOMP)
            self.assertEqual((comp.packet_id, comp.reason_code or 0), (7, 0))
            sub, _ = connect(b.port, "q2-sub")
            self.assertEqual(drain_publishes(sub), [b"once"])

    def test_delayed_will_survives_restart(self):
        with Broker() as b:
            watcher, _ = connect(b.port, "will-watch", clean=True)
            watcher.subscribe([("dur/will", 1)])
            watcher.disconnect()
            watcher.close()
            c = RawClient(b.port, version=5)
            c.connect("will-owner", clean_start=True, properties={"session_expiry_interval": 60},
                      will={"topic": "dur/will", "payload": b"gone", "qos": 1,
                            "properties": {"will_delay_interval": 2}})
            c.close()  # lost connection: the will waits 2 s
            time.sleep(0.3)
            b.kill9()
            b.start()
            watcher, _ = connect(b.port, "will-watch")
            self.assertEqual(drain_publishes(watcher, quiet=4.0), [b"gone"])

    def test_expired_session_dropped_on_load(self):
        with Broker() as b:
            c = RawClient(b.port, version=5)
            c.connect("short", clean_start=True, properties={"session_expiry_interval": 1})
            c.subscribe([("dur/short", 1)])
            c.disconnect()
            c.close()
            b.stop()
            time.sleep(2.0)
            b.start()
            c = RawClient(b.port, version=5)
            ack = c.connect("short", clean_start=False,
                            properties={"session_expiry_interval": 1})
            self.assertFalse(ack.session_present)

    def test_long_queue_pages_through_the_store(self):
        """With only 10 queued messages kept in memory, 500 messages for an offline session
        wait in the store and come back in order, across a kill -9 too."""
        config = "[limits]\nqueue_resident_messages = 10\nmax_queued_messages = 100000\n"
        with Broker(config_text=config) as b:
            sub, _ = connect(b.port, "page-sub", clean=True)
            sub.subscribe([("dur/page", 1)])
            sub.disconnect()
            sub.close()
            pub, _ = connect(b.port, "page-pub", clean=True)
            for i in range(250):
                pub.publish("dur/page", f"m{i}".encode(), qos=1)
                pub.expect(PUBACK)
            b.kill9()
            b.start()
            pub, _ = connect(b.port, "page-pub", clean=True)
            for i in range(250, 500):
                pub.publish("dur/page", f"m{i}".encode(), qos=1)
                pub.expect(PUBACK)
            sub, ack = connect(b.port, "page-sub")
            self.assertTrue(ack.session_present)
            self.assertEqual(drain_publishes(sub), [f"m{i}".encode() for i in range(500)])

    def test_durability_none_keeps_nothing(self):
        with Broker(config_text='[storage]\ndurability = "none"\n') as b:
            c, _ = connect(b.port, "mem-only", clean=True)
            c.subscribe([("dur/mem", 1)])
            c.disconnect()
            c.close()
            b.restart()
            c, ack = connect(b.port, "mem-only")
            self.assertFalse(ack.session_present)
            self.assertFalse(os.path.exists(os.path.join(b.data_dir, "state")))

    def test_corrupt_store_stops_startup(self):
        b = Broker()
        try:
            b.start()
            b.stop()
            state = os.path.join(b.data_dir, "state")
            manifests = [f for f in os.listdir(state) if f.startswith("MANIFEST")]
            self.assertTrue(manifests)
            for name in manifests:
                with open(os.path.join(state, name), "r+b") as f:
                    f.write(b"\xde\xad\xbe\xef" * 64)
            proc = subprocess.run(b.command(), capture_output=True, timeout=30)
            self.assertNotEqual(proc.returncode, 0)
            out = (proc.stdout + proc.stderr).decode(errors="replace")
            check_no_sanitizer_report(out, "the broker on a corrupt store")
            self.assertIn("cannot open the store", out)
            self.assertIn(state, out)
        finally:
            b.cleanup()

    def test_backup_on_sigusr1(self):
        with Broker() as b:
            c, _ = connect(b.port, "backup-me", clean=True)
            c.publish("dur/backup", b"x", qos=1, retain=True)
            c.expect(PUBACK)
            os.kill(b.pid, signal.SIGUSR1)
            backups = os.path.join(b.data_dir, "backups")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if os.path.isdir(backups) and any(
                        os.path.exists(os.path.join(backups, d, "CURRENT"))
                        for d in os.listdir(backups)):
                    break
                time.sleep(0.1)
            self.assertTrue(os.path.isdir(backups))
            self.assertTrue(any(os.path.exists(os.path.join(backups, d, "CURRENT"))
                                for d in os.listdir(backups)))


# ------------------------------------------------------------------ crash test under load

class CrashUnderLoad:
    DURABILITY = None

    def test_kill9_under_load_loses_nothing_acknowledged(self):
        rng = random.Random(int(os.environ.get("STARLING_CRASH_SEED", "20261122")))
        config = f'[storage]\ndurability = "{self.DURABILITY}"\n'
        with Broker(config_text=config) as b:
            load = LoadWithFaults(rng, "crash", retained=True, will=True)
            load.setup(b.port)
            crashes = 3
            for round_ in range(crashes + 1):
                load.round(b.port)
                if round_ < crashes:
                    b.kill9()
                    b.start()
                    load.after_fault(b.port)
            load.check(self, b.port)


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class CrashUnderLoadBatch(CrashUnderLoad, unittest.TestCase):
    DURABILITY = "batch"


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class CrashUnderLoadAlways(CrashUnderLoad, unittest.TestCase):
    DURABILITY = "always"


if __name__ == "__main__":
    unittest.main()
