"""Kafka to MQTT through [[kafka.consume]] rules, against librdkafka's mock cluster with kcat
producing: topic templates from key, partition and headers, headers as user properties, QoS and
retain, offsets committed only after routing (a kill -9 before the commit re-reads, nothing is
lost; a clean stop commits, nothing is re-read), and Confluent-framed Avro decoded to JSON with
schemas from a registry stub."""

import json
import time
import unittest

from harness import MqttClient, unique, user_properties
from kafka_harness import (KafkaTestCase, SchemaRegistryStub, avro_confluent_encode,
                           broker_metrics, kcat_produce, wait_metric)

# A short group session, because the group hands a restarted broker's partitions over only
# once the old member's session timed out (45 s by default).
FAST_GROUP = '"session.timeout.ms" = 6000\n'



metrics = broker_metrics


class KafkaConsumeTest(KafkaTestCase):
    kafka_brokers = 1

    def kafka_broker(self, rules, extra="", data_dir=None):
        if "[kafka.consumer_properties]" in extra:
            extra += FAST_GROUP
        else:
            extra += "\n[kafka.consumer_properties]\n" + FAST_GROUP
        return super().kafka_broker(rules, extra, data_dir=data_dir)

    def wait_assigned(self, broker, rule=0, group="starling"):
        wait_metric(broker, f"starling_kafka_assigned_partitions,group={group},rule={rule}",
                    lambda v: v > 0)

    def test_templates_headers_qos_and_retain(self):
        self.kafka.create_topic("commands", 3)
        b = self.kafka_broker('[[kafka.consume]]\ntopics = ["commands"]\n'
                              'mqtt_topic = "devices/{key}/{header.kind}"\nqos = 1\nretain = true\n'
                              'offset_reset = "earliest"\n')
        with MqttClient(b.port, client_id=unique("sub")) as sub:
            sub.connect()
            sub.subscribe("devices/#", qos=1)
            self.wait_assigned(b)
            kcat_produce(self.kafka.bootstrap, "commands",
                         [{"key": "dev1", "value": "reboot", "headers": {"kind": "cmd", "by": "ops"}}])
            msg = sub.get(timeout=20)
            self.assertEqual(msg.topic, "devices/dev1/cmd")
            self.assertEqual(msg.payload, b"reboot")
            self.assertEqual(msg.qos, 1)
            self.assertEqual(dict(user_properties(msg)), {"kind": "cmd", "by": "ops"})
        # retain = true: a later subscriber gets it as a retained message.
        with MqttClient(b.port, client_id=unique("late")) as late:
            late.connect()
            late.subscribe("devices/dev1/cmd", qos=1)
            msg = late.get(timeout=10)
            self.assertTrue(msg.retain)
            self.assertEqual(msg.payload, b"reboot")
        self.assertEqual(metrics(b)["starling_kafka_consumed_total"], 1)

    def test_regex_topics_and_partition_template(self):
        self.kafka.create_topic("metrics.a", 2)
        self.kafka.create_topic("metrics.b", 2)
        b = self.kafka_broker('[[kafka.consume]]\ntopics = ["^metrics\\\\..*"]\ngroup = "rx"\n'
                              'mqtt_topic = "k/{kafka_topic}/{partition}"\nqos = 0\n'
                              'offset_reset = "earliest"\n')
        with MqttClient(b.port, client_id=unique("sub")) as sub:
            sub.connect()
            sub.subscribe("k/#", qos=0)
            self.wait_assigned(b, group="rx")
            kcat_produce(self.kafka.bootstrap, "metrics.a", [{"value": "x"}], partition=1)
            kcat_produce(self.kafka.bootstrap, "metrics.b", [{"value": "y"}], partition=0)
            got = {(m.topic, m.payload) for m in sub.collect(2, timeout=20)}
        self.assertEqual(got, {("k/metrics.a/1", b"x"), ("k/metrics.b/0", b"y")})

    def test_invalid_mqtt_topic_is_skipped_and_counted(self):
        """A key that would make a wildcard topic: skipped, counted, and the next record still
        flows (its offset is committed past the bad one)."""
        self.kafka.create_topic("bad", 1)
        b = self.kafka_broker('[[kafka.consume]]\ntopics = ["bad"]\nmqtt_topic = "d/{key}"\n'
                              'offset_reset = "earliest"\n')
        with MqttClient(b.port, client_id=unique("sub")) as sub:
            sub.connect()
            sub.subscribe("d/#", qos=1)
            self.wait_assigned(b)
            kcat_produce(self.kafka.bootstrap, "bad",
                         [{"key": "a/#", "value": "wild"}, {"key": "ok", "value": "fine"}])
            msg = sub.get(timeout=20)
            self.assertEqual((msg.topic, msg.payload), ("d/ok", b"fine"))
        self.assertEqual(metrics(b)["starling_kafka_consume_skipped_total"], 1)

    def test_broker_rules_apply_to_consumed_records(self):
        """Consumed records pass the broker's front door like any publish: a topic deeper than
        limits.max_topic_levels and a $SYS topic are refused and counted as skipped, not
        routed, and the records after them still flow."""
        self.kafka.create_topic("deep", 1)
        b = self.kafka_broker('[[kafka.consume]]\ntopics = ["deep"]\nmqtt_topic = "{key}"\n'
                              'offset_reset = "earliest"\n',
                              extra="[limits]\nmax_topic_levels = 3\n")
        with MqttClient(b.port, client_id=unique("sub")) as sub:
            sub.connect()
            sub.subscribe("#", qos=1)
            sub.subscribe("$SYS/x/#", qos=1)
            self.wait_assigned(b)
            kcat_produce(self.kafka.bootstrap, "deep",
                         [{"key": "a/b/c/d", "value": "too deep"},
                          {"key": "$SYS/x/y", "value": "spoofed"},
                          {"key": "a/b/c", "value": "fine"}])
            msg = sub.get(timeout=20)
            # In partition order: had either refused record been routed, it would come first.
            self.assertEqual((msg.topic, msg.payload), ("a/b/c", b"fine"))
        m = metrics(b)
        self.assertEqual(m["starling_kafka_consume_skipped_total"], 2)
        self.assertEqual(m["starling_kafka_consumed_total"], 1)

    def test_kill9_before_commit_rereads_nothing_lost(self):
        """Records routed into an offline persistent session's queue, then kill -9 before any
        offset commit: after the restart the records are read again from Kafka; the subscriber
        gets every record at least once."""
        self.kafka.create_topic("orders", 2)
        rules = ('[[kafka.consume]]\ntopics = ["orders"]\nmqtt_topic = "orders/{key}"\n'
                 'qos = 1\noffset_reset = "earliest"\n')
        # No commit happens in the test's lifetime unless the broker stops cleanly.
        extra = '[kafka.consumer_properties]\n"auto.commit.interval.ms" = 600000\n'
        b = self.kafka_broker(rules, extra)
        client_id = unique("persistent")
        with MqttClient(b.port, client_id=client_id, clean=False, session_expiry=3600) as sub:
            sub.connect()
            sub.subscribe("orders/#", qos=1)
        self.wait_assigned(b)
        sent = [f"order-{i}" for i in range(40)]
        kcat_produce(self.kafka.bootstrap, "orders",
                     [{"key": f"k{i % 5}", "value": v} for i, v in enumerate(sent)])
        wait_metric(b, "starling_kafka_consumed_total", lambda v: v == len(sent))
        b.kill9()
        b.start()
        self.wait_assigned(b)
        wait_metric(b, "starling_kafka_consumed_total", lambda v: v >= len(sent))
        with MqttClient(b.port, client_id=client_id, clean=False, session_expiry=3600) as sub:
            sub.connect()
            received = []
            deadline = time.time() + 30
            while set(received) != set(sent) and time.time() < deadline:
                received += [m.payload.decode() for m in sub.drain(wait=0.5)]
        self.assertEqual(set(received), set(sent))
        self.assertGreaterEqual(len(received), len(sent))

    def test_clean_stop_commits_nothing_read_twice(self):
        """A clean stop commits the routed offsets: after the restart only the new record is
        read (the consumed count is exactly one)."""
        self.kafka.create_topic("once", 1)
        rules = ('[[kafka.consume]]\ntopics = ["once"]\nmqtt_topic = "once"\n'
                 'offset_reset = "earliest"\n')
        extra = '[kafka.consumer_properties]\n"auto.commit.interval.ms" = 600000\n'
        b = self.kafka_broker(rules, extra)
        self.wait_assigned(b)
        kcat_produce(self.kafka.bootstrap, "once", [{"value": f"v{i}"} for i in range(10)])
        wait_metric(b, "starling_kafka_consumed_total", lambda v: v == 10)
        self.assertEqual(b.stop(), 0)
        b.start()
        self.wait_assigned(b)
        kcat_produce(self.kafka.bootstrap, "once", [{"value": "new"}])
        wait_metric(b, "starling_kafka_consumed_total", lambda v: v >= 1)
        with MqttClient(b.port, client_id=unique("sub")) as sub:
            sub.connect()
            sub.expect_nothing(wait=1.0)  # (retain is off: nothing old is replayed)
        self.assertEqual(metrics(b)["starling_kafka_consumed_total"], 1)
        self.assertEqual(wait_metric(b, "starling_kafka_consumer_lag,group=starling,rule=0",
                                     lambda v: v == 0), 0)

    def test_avro_confluent_decoded_to_json(self):
        schema = json.dumps({
            "type": "record", "name": "Reading", "namespace": "test",
            "fields": [{"name": "device", "type": "string"},
                       {"name": "celsius", "type": "double"},
                       {"name": "count", "type": "long"},
                       {"name": "ok", "type": "boolean"}]})
        with SchemaRegistryStub() as registry:
            registry.register(7, schema)
            self.kafka.create_topic("readings", 1)
            b = self.kafka_broker('[[kafka.consume]]\ntopics = ["readings"]\n'
                                  'mqtt_topic = "r/{key}"\ncodec = "avro-confluent"\n'
                                  'offset_reset = "earliest"\n',
                                  extra=f'schema_registry = "{registry.url}"\n')
            with MqttClient(b.port, client_id=unique("sub")) as sub:
                sub.connect()
                sub.subscribe("r/#", qos=1)
                self.wait_assigned(b)
                records = [
                    {"key": "d1", "value": avro_confluent_encode(
                        schema, 7, {"device": "d1", "celsius": 21.5, "count": 3, "ok": True})},
                    {"key": "d2", "value": b"not avro"},
                    {"key": "d3", "value": avro_confluent_encode(
                        schema, 7, {"device": "d3", "celsius": -4.0, "count": 9, "ok": False})},
                ]
                kcat_produce(self.kafka.bootstrap, "readings", records)
                got = sub.collect(2, timeout=20)
            self.assertEqual([m.topic for m in got], ["r/d1", "r/d3"])
            self.assertEqual(json.loads(got[0].payload),
                             {"device": "d1", "celsius": 21.5, "count": 3, "ok": True})
            self.assertEqual(json.loads(got[1].payload),
                             {"device": "d3", "celsius": -4.0, "count": 9, "ok": False})
            # Fetched once, then from the cache.
            self.assertEqual(registry.requests.get(7), 1)
            self.assertEqual(metrics(b)["starling_kafka_consume_skipped_total"], 1)


if __name__ == "__main__":
    unittest.main()
