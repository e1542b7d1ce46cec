"""MQTT and HTTP to Kafka through [[kafka.produce]] rules, against librdkafka's mock cluster
(tests/tools/kafka_mock.cc) with kcat reading what arrived: templates and headers, async mode
through broker outages, request errors, slow brokers and kill -9, sync mode holding the PUBACK
until Kafka acknowledged, the bounded buffer pausing publishers and refusing HTTP publishes."""

import http.client
import json
import os
import unittest
import urllib.request


from harness import (HOST, BrokerTestCase, MqttClient, dashboard_queries, exported_series,
                     series_in, unique)
from kafka_harness import (API_PRODUCE, ERR_NOT_LEADER_FOR_PARTITION, ERR_REQUEST_TIMED_OUT,
                           KafkaTestCase, broker_metrics, kcat_consume, wait_metric)
from mqtt_raw import PUBACK, RawClient

metrics = broker_metrics


def values_of(records):
    return sorted(r["value"].decode() for r in records)


def http_post(broker, path, body):
    conn = http.client.HTTPConnection(HOST, broker.http_port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


class KafkaProduceTest(KafkaTestCase):
    kafka_brokers = 3

    def test_templates_key_and_headers(self):
        """Topic from a topic level, key from the client id, and the MQTT attributes and user
        properties as Kafka headers."""
        self.kafka.create_topic("iot.site1", 2)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "sites/+/temp"\n'
                              'topic = "iot.{topic[1]}"\nkey = "{clientid}-k"\n')
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("unit", "C")]
        props.ContentType = "text/plain"
        with MqttClient(b.port, client_id="dev-9") as c:
            c.connect()
            c.publish("sites/site1/temp", b"21.5", qos=1, properties=props)
            c.publish("sites/site1/other", b"not matched", qos=1)
        records = kcat_consume(self.kafka.bootstrap, "iot.site1", 1)
        self.assertEqual(len(records), 1)
        r = records[0]
        self.assertEqual(r["value"], b"21.5")
        self.assertEqual(r["key"], b"dev-9-k")
        h = r["headers"]
        self.assertEqual(h["mqtt.topic"], b"sites/site1/temp")
        self.assertEqual(h["mqtt.client_id"], b"dev-9")
        self.assertEqual(h["mqtt.qos"], b"1")
        self.assertEqual(h["mqtt.retain"], b"0")
        self.assertEqual(h["content-type"], b"text/plain")
        self.assertEqual(h["unit"], b"C")
        # Nothing else went to Kafka: the other topic did not match the filter.
        self.assertEqual(metrics(b)["starling_kafka_produced_total"], 1)

    def test_http_publish_follows_the_rules(self):
        """POST /api/v1/publish and /bulk reach Kafka like MQTT publishes."""
        self.kafka.create_topic("events", 1)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "events/#"\ntopic = "events"\n'
                              'key = ""\n')
        status, body = http_post(b, "/api/v1/publish",
                                 {"topic": "events/a", "payload": "one", "qos": 1})
        self.assertEqual(status, 202, body)  # no MQTT subscriber; Kafka has it
        status, body = http_post(b, "/api/v1/publish/bulk",
                                 [{"topic": "events/b", "payload": "two"},
                                  {"topic": "events/c", "payload": "three", "qos": 1}])
        self.assertEqual(status, 200, body)
        records = kcat_consume(self.kafka.bootstrap, "events", 3)
        self.assertEqual(values_of(records), ["one", "three", "two"])
        self.assertIsNone(records[0]["key"])  # key = "": records without a key

    def test_async_rides_out_an_outage_without_loss(self):
        """Every broker down: publishes are acknowledged (the bridge buffers them), failed
        deliveries are retried by the bridge, and all arrive once Kafka is back."""
        self.kafka.create_topic("outage", 3)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "o/#"\ntopic = "outage"\n',
                              extra='[kafka.producer_properties]\n"message.timeout.ms" = 1000\n')
        self.kafka.broker_down(-1)
        sent = [f"m{i}" for i in range(30)]
        with MqttClient(b.port, client_id=unique("pub")) as c:
            c.connect()
            for s in sent:
                c.publish("o/x", s.encode(), qos=1)  # waits for the PUBACK
        wait_metric(b, "starling_kafka_buffer_messages", lambda v: v == 30)
        # librdkafka gave up at least once and the bridge produced again.
        wait_metric(b, "starling_kafka_produce_retries_total", lambda v: v > 0)
        self.kafka.broker_up(-1)
        wait_metric(b, "starling_kafka_buffer_messages", lambda v: v == 0, timeout=60)
        records = kcat_consume(self.kafka.bootstrap, "outage", 30)
        self.assertEqual(sorted(set(values_of(records))), sorted(sent))

    def test_async_survives_request_errors_and_a_slow_broker(self):
        """Produce requests failing (timeouts, not leader) and brokers answering slower than
        the delivery timeout: everything still arrives (duplicates allowed, no loss)."""
        self.kafka.create_topic("flaky", 2)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "f/#"\ntopic = "flaky"\n',
                              extra='[kafka.producer_properties]\n"message.timeout.ms" = 1500\n'
                                    '"request.timeout.ms" = 1000\n')
        self.kafka.push_errors(API_PRODUCE, 5, ERR_REQUEST_TIMED_OUT)
        self.kafka.push_errors(API_PRODUCE, 5, ERR_NOT_LEADER_FOR_PARTITION)
        with MqttClient(b.port, client_id=unique("pub")) as c:
            c.connect()
            for i in range(10):
                c.publish("f/a", f"e{i}".encode(), qos=1)
            self.kafka.set_rtt(-1, 3000)  # slower than request and delivery timeouts
            for i in range(10):
                c.publish("f/b", f"s{i}".encode(), qos=1)
            wait_metric(b, "starling_kafka_produce_retries_total", lambda v: v > 0)
            self.kafka.set_rtt(-1, 0)
        wait_metric(b, "starling_kafka_buffer_messages", lambda v: v == 0, timeout=60)
        got = set(values_of(kcat_consume(self.kafka.bootstrap, "flaky", 100, timeout=10)))
        self.assertEqual(got, {f"e{i}" for i in range(10)} | {f"s{i}" for i in range(10)})

    def test_async_buffer_survives_kill9(self):
        """Acknowledged while Kafka is down, then kill -9: the restarted broker produces what
        its store buffered."""
        self.kafka.create_topic("crash", 2)
        rules = '[[kafka.produce]]\nfilter = "c/#"\ntopic = "crash"\n'
        b = self.kafka_broker(rules)
        self.kafka.broker_down(-1)
        sent = [f"k{i}" for i in range(25)]
        with MqttClient(b.port, client_id=unique("pub")) as c:
            c.connect()
            for s in sent:
                c.publish("c/x", s.encode(), qos=1)
        b.kill9()
        self.kafka.broker_up(-1)
        b.start()
        wait_metric(b, "starling_kafka_buffer_messages", lambda v: v == 0, timeout=60)
        records = kcat_consume(self.kafka.bootstrap, "crash", 25)
        self.assertEqual(sorted(set(values_of(records))), sorted(sent))
        self.assertIn("buffered records left from the previous run", b.log())

    def test_sync_holds_the_puback_until_kafka_acks(self):
        """mode = "sync": no PUBACK while Kafka cannot take the record; it comes once Kafka
        acknowledged it, and the record is there."""
        self.kafka.create_topic("sync", 1)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "s/#"\ntopic = "sync"\nmode = "sync"\n')
        self.kafka.broker_down(-1)
        with RawClient(b.port) as c:
            c.connect(unique("sync"))
            pid = c.publish("s/1", b"held", qos=1)
            wait_metric(b, "starling_kafka_sync_waiting", lambda v: v == 1)
            self.assertEqual(c.collect(timeout=1.0), [])
            self.kafka.broker_up(-1)
            ack = c.expect(PUBACK, timeout=30)
            self.assertEqual(ack.packet_id, pid)
        records = kcat_consume(self.kafka.bootstrap, "sync", 1)
        self.assertEqual(values_of(records), ["held"])

    def test_qos1_beyond_receive_maximum_disconnects_93(self):
        """PUBACKs held by a sync rule while Kafka is down count against the broker's Receive
        Maximum (5) like unreleased QoS 2 ids: 5 QoS 1 PUBLISHes wait, the 6th gets DISCONNECT
        0x93 ([MQTT-3.3.4-9])."""
        self.kafka.create_topic("rm", 1)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "rm/#"\ntopic = "rm"\nmode = "sync"\n',
                              extra="[mqtt]\nreceive_maximum = 5\n")
        self.kafka.broker_down(-1)
        with RawClient(b.port) as c:
            self.assertEqual(c.connect(unique("rm")).properties.get("receive_maximum"), 5)
            for i in range(1, 6):
                c.publish("rm/x", b"held", qos=1, packet_id=i)
            wait_metric(b, "starling_kafka_sync_waiting", lambda v: v == 5)
            c.publish("rm/x", b"one too many", qos=1, packet_id=6)
            self.assertEqual(c.wait_closed(10), 0x93)

    def test_sync_under_load_acks_everything_in_order(self):
        """starling-bench publishes 200,000 QoS 1 messages from 10 publishers through a sync
        rule, each with the broker's whole Receive Maximum in flight, so the publishers wait on
        held acknowledgements over and over: every message reaches the subscribers and Kafka,
        none is stuck."""
        import subprocess
        self.kafka.create_topic("load", 4)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "bench/#"\ntopic = "load"\nkey = ""\n'
                              'mode = "sync"\n')
        bench = os.path.join(os.path.dirname(os.environ["STARLING_BIN"]), "starling-bench")
        proc = subprocess.run(
            # The count decides, not the window: --duration only bounds a stuck run.
            [bench, "--port", str(b.port), "--qos", "1", "--count", "20000", "--warmup", "0",
             "--duration", "200", "--drain", "30", "--json", "--quiet", "pairs", "--pairs", "10"],
            capture_output=True, text=True, timeout=300)
        report = json.loads(proc.stdout)
        self.assertTrue(report["ok"], report.get("error"))
        self.assertEqual(report["received_total"], 200000)
        self.assertEqual(report["lost"], 0)
        self.assertEqual(metrics(b)["starling_kafka_produced_total"], 200000)
        self.assertEqual(metrics(b)["starling_kafka_sync_waiting"], 0)

    def test_sync_failure_is_told_to_the_publisher(self):
        """sync, Kafka never answers within message.timeout.ms: 5.0 gets PUBACK 0x80 and the
        HTTP publish 503; a 3.1.1 publisher is disconnected without a PUBACK."""
        self.kafka.create_topic("syncfail", 1)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "sf/#"\ntopic = "syncfail"\n'
                              'mode = "sync"\n',
                              extra='[kafka.producer_properties]\n"message.timeout.ms" = 1000\n')
        self.kafka.broker_down(-1)
        with RawClient(b.port) as c:
            c.connect(unique("v5"))
            pid = c.publish("sf/1", b"x", qos=1)
            ack = c.expect(PUBACK, timeout=30)
            self.assertEqual((ack.packet_id, ack.reason_code), (pid, 0x80))
        status, body = http_post(b, "/api/v1/publish", {"topic": "sf/2", "payload": "y"})
        self.assertEqual(status, 503)
        self.assertEqual(body["error"], "kafka_failed")
        with RawClient(b.port, version=4) as c:
            c.connect(unique("v311"))
            c.publish("sf/3", b"z", qos=1)
            self.assertIsNone(c.wait_closed(timeout=30))  # 3.1.1: closed, no PUBACK
        self.assertEqual(metrics(b)["starling_kafka_sync_failures_total"], 3)

    def test_full_buffer_pauses_mqtt_publishers_and_refuses_http(self):
        """buffer_max_messages = 4 with Kafka down: the MQTT publisher is paused (its next
        PUBLISH is not read) instead of dropped; an HTTP publish gets 503. Once Kafka is back
        the publisher goes on and every acknowledged message arrives."""
        self.kafka.create_topic("bounded", 1)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "b/#"\ntopic = "bounded"\n',
                              extra="buffer_max_messages = 4\n")
        self.kafka.broker_down(-1)
        with RawClient(b.port) as c:
            c.connect(unique("pub"))
            for i in range(4):
                pid = c.publish("b/m", f"m{i}".encode(), qos=1)
                self.assertEqual(c.expect(PUBACK).packet_id, pid)
            status, body = http_post(b, "/api/v1/publish", {"topic": "b/h", "payload": "h"})
            self.assertEqual((status, body["error"]), (503, "bridge_full"))
            pid = c.publish("b/m", b"m4", qos=1)  # read only once the buffer drains
            self.assertEqual(c.collect(timeout=1.0), [])
            self.kafka.broker_up(-1)
            self.assertEqual(c.expect(PUBACK, timeout=60).packet_id, pid)
        wait_metric(b, "starling_kafka_buffer_messages", lambda v: v == 0, timeout=60)
        records = kcat_consume(self.kafka.bootstrap, "bounded", 5)
        self.assertEqual(values_of(records), ["m0", "m1", "m2", "m3", "m4"])
        m = metrics(b)
        self.assertEqual(m["starling_kafka_refused_total"], 1)
        self.assertGreaterEqual(m["starling_publishers_throttled_total"], 1)

    def test_readyz_follows_kafka_reachability(self):
        self.kafka.create_topic("ready", 1)
        b = self.kafka_broker('[[kafka.produce]]\nfilter = "r/#"\ntopic = "ready"\n')
        wait_metric(b, "starling_kafka_reachable", lambda v: v == 1)

        def readyz():
            conn = http.client.HTTPConnection(HOST, b.http_port, timeout=5)
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            body = json.loads(r.read())
            conn.close()
            return r.status, body

        status, body = readyz()
        self.assertEqual(status, 200)
        self.assertTrue(body["checks"]["kafka"].startswith("reachable"), body)
        self.kafka.broker_down(-1)
        wait_metric(b, "starling_kafka_reachable", lambda v: v == 0)
        status, body = readyz()
        self.assertEqual(status, 503)
        self.assertTrue(body["checks"]["kafka"].startswith("unreachable"), body)


class KafkaMetricsTest(BrokerTestCase):
    broker_scope = None

    def test_grafana_dashboard_kafka_metrics_are_exported(self):
        """Every starling_kafka_* series the dashboard queries exists on a broker running the
        bridge in both directions (parsed with prometheus_client's parser)."""
        used = series_in(dashboard_queries(), "starling_kafka_")
        self.assertGreater(len(used), 5)
        b = self.new_broker(config_text='[kafka]\nmock = true\n[[kafka.produce]]\n'
                            'filter = "m/#"\ntopic = "m"\n[[kafka.consume]]\ntopics = ["c"]\n',
                            http=True)
        with urllib.request.urlopen(f"http://{HOST}:{b.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        self.assertEqual(used - exported_series(text), set())


class KafkaMockModeTest(BrokerTestCase):
    broker_scope = None

    def test_built_in_mock_cluster(self):
        """kafka.mock = true: the broker runs a mock cluster, logs its address, and the bridge
        works against it (the README's try-it-out path)."""
        topic = unique("try").replace("-", "_")
        b = self.new_broker(config_text=f'[kafka]\nmock = true\n[[kafka.produce]]\n'
                            f'filter = "try/#"\ntopic = "{topic}"\n', http=True)
        with MqttClient(b.port, client_id="tryer") as c:
            c.connect()
            c.publish("try/it", b"hello", qos=1)
        log = b.log()
        marker = "mock cluster with 1 broker(s) at "
        self.assertIn(marker, log)
        bootstrap = log.split(marker, 1)[1].split()[0]
        records = kcat_consume(bootstrap, topic, 1)
        self.assertEqual(values_of(records), ["hello"])


if __name__ == "__main__":
    unittest.main()
