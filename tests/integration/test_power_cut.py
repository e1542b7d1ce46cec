"""Power cuts: what the broker acknowledged survives losing everything that was not synced.

kill -9 leaves the kernel's page cache intact, so test_durability.py cannot tell a store that
syncs from one that does not. Here the broker's data directory lives on starling-powercut-fs
(power_cut.py), which at each cut keeps only what fsync made durable: file data that was synced,
and directory entries (new files, renames, new directories) whose directory was synced. The same
load as the crash test (durability_load.py) runs through several cuts at random moments, and a
test-only switch that turns the store's sync off shows that the test catches a store that does
not sync. The Kafka outbox (async records acknowledged to publishers) goes through cuts too.
Starling-specific; skipped against Mosquitto.
"""

import os
import random
import unittest

from durability_load import LoadWithFaults, connect
from harness import Broker, against_mosquitto
from mqtt_raw import PUBACK, PUBLISH

SEED = int(os.environ.get("STARLING_CRASH_SEED", "20261204"))


def durable_broker(disk, durability, env=None):
    config = f'[storage]\ndurability = "{durability}"\n'
    return Broker(config_text=config, data_dir=os.path.join(disk.path, "data"), env=env)


def power_cut(broker, disk):
    broker.kill9()
    disk.cut()
    broker.start()


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class PowerCutRightAfterFirstStart(unittest.TestCase):
    def test_new_store_survives(self):
        """The data directory and the store are created at first start; unless their parents
        are synced too, a cut soon after takes the whole store with it."""
        from power_cut import PowerCutDisk
        with PowerCutDisk() as disk, durable_broker(disk, "batch") as b:
            sub, _ = connect(b.port, "first-sub", clean=True)
            sub.subscribe([("first/q", 1)])
            sub.disconnect()
            sub.close()
            pub, _ = connect(b.port, "first-pub", clean=True)
            pub.publish("first/q", b"queued", qos=1)
            pub.expect(PUBACK)
            pub.publish("first/retained", b"kept", qos=1, retain=True)
            pub.expect(PUBACK)
            power_cut(b, disk)
            sub, ack = connect(b.port, "first-sub")
            self.assertTrue(ack.session_present, "the session did not survive the power cut")
            p = sub.recv_packet(5.0)
            self.assertIsNotNone(p, "the queued message did not survive the power cut")
            self.assertEqual((p.type, p.payload), (PUBLISH, b"queued"))
            other, _ = connect(b.port, "first-check", clean=True)
            other.subscribe([("first/retained", 0)])
            p = other.recv_packet(5.0)
            self.assertIsNotNone(p, "the retained message did not survive the power cut")
            self.assertEqual(p.payload, b"kept")


class PowerCutUnderLoad:
    DURABILITY = None
    CUTS = 3

    def run_load(self, env=None):
        from power_cut import PowerCutDisk
        rng = random.Random(SEED)
        with PowerCutDisk() as disk, durable_broker(disk, self.DURABILITY, env) as b:
            load = LoadWithFaults(rng, "cut", retained=True, will=True)
            load.setup(b.port)
            for round_ in range(self.CUTS + 1):
                load.round(b.port)
                if round_ < self.CUTS:
                    power_cut(b, disk)
                    load.after_fault(b.port)
            load.check(self, b.port)


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class PowerCutUnderLoadBatch(PowerCutUnderLoad, unittest.TestCase):
    DURABILITY = "batch"

    def test_power_cuts_lose_nothing_acknowledged(self):
        self.run_load()


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class PowerCutUnderLoadAlways(PowerCutUnderLoad, unittest.TestCase):
    DURABILITY = "always"

    def test_power_cuts_lose_nothing_acknowledged(self):
        self.run_load()


@unittest.skipIf(against_mosquitto(), "Starling durable state")
class PowerCutTestCatchesAStoreThatDoesNotSync(PowerCutUnderLoad, unittest.TestCase):
    """The proof that the cuts above are real: with the store's sync turned off (a switch only
    test builds have), the same load loses acknowledged messages."""
    DURABILITY = "batch"

    def test_unsynced_store_loses_acknowledged_messages(self):
        with self.assertRaisesRegex(AssertionError, "lost"):
            self.run_load(env={"STARLING_TEST_UNSAFE_NO_SYNC": "1"})


class KafkaOutboxPowerCut:
    """Records the Kafka bridge accepted in async mode are acknowledged to the publisher once
    they are in the store's outbox; power cuts while Kafka is down (and while it is up and
    records leave the outbox) lose none of them."""

    def run_outbox(self, env=None):
        from kafka_harness import MockKafka, kcat_consume, wait_metric
        from power_cut import PowerCutDisk
        rng = random.Random(SEED)
        kafka = MockKafka(brokers=1).start()
        self.addCleanup(kafka.stop)
        kafka.create_topic("outbox", 2)
        config = (f'[storage]\ndurability = "batch"\n[kafka]\nbootstrap = "{kafka.bootstrap}"\n'
                  '[kafka.properties]\n"reconnect.backoff.ms" = 100\n'
                  '"reconnect.backoff.max.ms" = 500\n'
                  '[[kafka.produce]]\nfilter = "out/#"\ntopic = "outbox"\n')
        sent = []
        with PowerCutDisk() as disk:
            b = Broker(config_text=config, data_dir=os.path.join(disk.path, "data"), http=True,
                       env=env)
            with b:
                for round_ in range(3):
                    kafka_up = round_ == 1  # records also leave the outbox while power goes
                    if kafka_up:
                        kafka.broker_up(-1)
                    else:
                        kafka.broker_down(-1)
                    pub, _ = connect(b.port, "outbox-pub", clean=True)
                    for _ in range(rng.randint(10, 40)):
                        sent.append(f"r{len(sent)}")
                        pub.publish("out/x", sent[-1].encode(), qos=1)
                        pub.expect(PUBACK)
                    pub.close()
                    power_cut(b, disk)
                kafka.broker_up(-1)
                wait_metric(b, "starling_kafka_buffer_messages", lambda v: v == 0, timeout=60)
                got = {r["value"].decode()
                       for r in kcat_consume(kafka.bootstrap, "outbox", 10 * len(sent),
                                             timeout=10)}
                lost = set(sent) - got
                self.assertFalse(lost, f"lost {len(lost)} of {len(sent)} acknowledged records: "
                                       f"{sorted(lost)[:5]}")


@unittest.skipIf(against_mosquitto(), "Starling's Kafka bridge")
class KafkaOutboxSurvivesPowerCuts(KafkaOutboxPowerCut, unittest.TestCase):
    def test_acknowledged_records_reach_kafka(self):
        self.run_outbox()


@unittest.skipIf(against_mosquitto(), "Starling's Kafka bridge")
class KafkaOutboxPowerCutCatchesNoSync(KafkaOutboxPowerCut, unittest.TestCase):
    def test_unsynced_outbox_loses_records(self):
        with self.assertRaisesRegex(AssertionError, "lost"):
            self.run_outbox(env={"STARLING_TEST_UNSAFE_NO_SYNC": "1"})


if __name__ == "__main__":
    unittest.main()
