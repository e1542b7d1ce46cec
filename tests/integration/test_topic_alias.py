"""MQTT 5.0 Topic Aliases, inbound (client -> broker: mapping, remapping, invalid aliases) and
outbound (broker -> a subscriber that allows aliases: every PUBLISH must resolve to the right
topic through a per-connection alias map, whether or not the broker chooses to use aliases;
Starling does use them, which the Starling-only tests check on the wire: a repeated topic goes
out as an empty topic name with its alias)."""

import unittest

from harness import Broker, BrokerTestCase, against_mosquitto, unique
from mqtt_raw import PUBACK, PUBLISH, RawClient, check_broker_serves

RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_TOPIC_ALIAS_INVALID = 0x94


class TopicAliasTest(BrokerTestCase):

    def subscriber(self, topic_filter, qos=1, **connect_args):
        c = self.raw_client(**connect_args)
        self.assertEqual(c.subscribe([(topic_filter, qos)]).reason_codes, [qos])
        return c


class InboundAliases(TopicAliasTest):

    def test_alias_then_empty_topic_delivers_full_topic(self):
        """PUBLISH with topic + alias 1, then empty topic + alias 1: both are delivered on the
        full topic; the subscriber (which allows no aliases) sees no Topic Alias property."""
        base = unique("in")
        sub = self.subscriber(f"{base}/#")
        pub = self.raw_client()
        self.assertGreaterEqual(self.connack.properties.get("topic_alias_maximum", 0), 1)
        pub.publish(f"{base}/a", b"first", properties={"topic_alias": 1})
        pub.publish("", b"second", properties={"topic_alias": 1})
        pub.publish("", b"third", qos=1, properties={"topic_alias": 1})
        self.assertEqual(pub.expect(PUBACK).reason_code, 0)
        got = sub.collect(2.0, quiet=1.0)
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [(f"{base}/a", b"first"), (f"{base}/a", b"second"),
                          (f"{base}/a", b"third")])
        self.assertTrue(all("topic_alias" not in m.properties for m in got))

    def test_alias_can_be_remapped(self):
        """Sending a new topic with an alias already in use replaces the mapping."""
        base = unique("remap")
        sub = self.subscriber(f"{base}/#", qos=0)
        pub = self.raw_client()
        pub.publish(f"{base}/a", b"1", properties={"topic_alias": 1})
        pub.publish("", b"2", properties={"topic_alias": 1})
        pub.publish(f"{base}/b", b"3", properties={"topic_alias": 1})
        pub.publish("", b"4", properties={"topic_alias": 1})
        got = sub.collect(2.0, quiet=1.0)
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [(f"{base}/a", b"1"), (f"{base}/a", b"2"), (f"{base}/b", b"3"),
                          (f"{base}/b", b"4")])

    def test_retained_via_alias_stored_under_full_topic(self):
        """A retained message sent with empty topic + alias is retained under the full topic:
        a later subscriber gets it with that topic."""
        topic = unique("ret")
        pub = self.raw_client()
        pub.publish(topic, b"x", properties={"topic_alias": 2})
        pub.publish("", b"kept", qos=1, retain=True, properties={"topic_alias": 2})
        pub.expect(PUBACK)
        sub = self.subscriber(topic)
        m = sub.expect(PUBLISH)
        self.assertEqual((m.topic, m.payload, m.retain), (topic, b"kept", True))
        pub.publish(topic, b"", qos=1, retain=True)
        pub.expect(PUBACK)

    def test_alias_above_maximum_disconnects_94(self):
        """An alias above the Topic Alias Maximum from the CONNACK gets DISCONNECT 0x94 and the
        message is not delivered."""
        base = unique("above")
        sub = self.subscriber(f"{base}/#")
        pub = self.raw_client()
        maximum = self.connack.properties.get("topic_alias_maximum", 0)
        pub.publish(f"{base}/x", b"bad", properties={"topic_alias": maximum + 1})
        self.assertEqual(pub.wait_closed(5), RC_TOPIC_ALIAS_INVALID)
        self.assertEqual(sub.collect(1.0), [])

    def test_alias_above_configured_maximum(self):
        """With the broker's maximum configured to 2, alias 2 works and alias 3 gets 0x94."""
        with Broker(config_text="[mqtt]\ntopic_alias_maximum = 2\n",
                    mosquitto_config="max_topic_alias 2\n") as b, RawClient(b.port) as c:
            ack = c.connect(unique("cfg"))
            self.assertEqual(ack.properties.get("topic_alias_maximum"), 2)
            topic = unique("cfg")
            c.publish(topic, b"ok", qos=1, properties={"topic_alias": 2})
            self.assertIn(c.expect(PUBACK).reason_code, (0, 0x10))  # 0x10: no subscribers
            c.publish(topic, b"bad", qos=1, properties={"topic_alias": 3})
            self.assertEqual(c.wait_closed(5), RC_TOPIC_ALIAS_INVALID)

    def test_alias_zero_disconnects(self):
        """Topic Alias 0 is not permitted [MQTT-3.3.2-8]: the connection is closed with a
        DISCONNECT (0x94 Topic Alias invalid, or 0x82 / 0x81 -- the spec names no single code;
        Mosquitto sends 0x81) and nothing is delivered."""
        base = unique("zero")
        sub = self.subscriber(f"{base}/#")
        pub = self.raw_client()
        pub.publish(f"{base}/x", b"bad", properties={"topic_alias": 0})
        self.assertIn(pub.wait_closed(5),
                      (RC_TOPIC_ALIAS_INVALID, RC_PROTOCOL_ERROR, RC_MALFORMED))
        self.assertEqual(sub.collect(1.0), [])
        check_broker_serves(self.port)

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 rejects alias 0 as malformed "
                     "(0x81); Starling uses 0x94 Topic Alias invalid")
    def test_alias_zero_reason_is_94(self):
        """Starling reports alias 0 as 0x94 (Topic Alias invalid)."""
        pub = self.raw_client()
        pub.publish(unique("zero94"), b"bad", properties={"topic_alias": 0})
        self.assertEqual(pub.wait_closed(5), RC_TOPIC_ALIAS_INVALID)

    def test_empty_topic_with_unknown_alias_is_protocol_error(self):
        """Aliases live per connection: alias 1 set on one connection is unknown on another,
        where empty topic + alias 1 is a protocol error (DISCONNECT 0x82), not delivered."""
        base = unique("unknown")
        sub = self.subscriber(f"{base}/#")
        other = self.raw_client()
        other.publish(f"{base}/a", b"sets-alias", properties={"topic_alias": 1})
        self.assertEqual(sub.expect(PUBLISH).payload, b"sets-alias")
        pub = self.raw_client()
        pub.publish("", b"bad", properties={"topic_alias": 1})
        self.assertEqual(pub.wait_closed(5), RC_PROTOCOL_ERROR)
        self.assertEqual(sub.collect(1.0), [])

    def test_empty_topic_without_alias_is_protocol_error(self):
        """An empty topic with no Topic Alias at all is a protocol error (0x82)."""
        pub = self.raw_client()
        pub.publish("", b"bad")
        self.assertEqual(pub.wait_closed(5), RC_PROTOCOL_ERROR)


class OutboundAliases(TopicAliasTest):

    def resolve_all(self, packets, alias_max):
        """Applies the receiver's rules to the PUBLISHes of one connection and returns
        [(topic, payload)]; fails on any alias misuse."""
        aliases, out = {}, []
        for m in packets:
            self.assertEqual(m.type, PUBLISH)
            alias = m.properties.get("topic_alias")
            if alias is not None:
                self.assertTrue(1 <= alias <= alias_max, f"alias {alias} out of 1..{alias_max}")
                if m.topic:
                    aliases[alias] = m.topic
                else:
                    self.assertIn(alias, aliases, "empty topic with an alias never set")
            else:
                self.assertNotEqual(m.topic, "", "empty topic without alias")
            out.append((m.topic or aliases[alias], m.payload))
        return out

    def test_subscriber_with_alias_maximum_resolves_every_topic(self):
        """A subscriber allowing 5 aliases receives 3 rounds over 8 topics: every PUBLISH
        resolves (full topic, or alias within 1..5 set earlier on this connection) to the topic
        it was published on, in order."""
        base = unique("out")
        sub = self.subscriber(f"{base}/#", qos=0, properties={"topic_alias_maximum": 5})
        pub = self.raw_client()
        expected = []
        for r in range(3):
            for i in range(8):
                pub.publish(f"{base}/t{i}", f"{r}:{i}".encode())
                expected.append((f"{base}/t{i}", f"{r}:{i}".encode()))
        got = sub.collect(3.0, quiet=1.0)
        self.assertEqual(self.resolve_all(got, 5), expected)

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 sends no outbound topic aliases "
                     "(it may: the spec lets the server choose)")
    def test_repeated_topic_goes_out_as_alias_with_empty_topic(self):
        """Starling uses outbound aliases: a subscriber allowing 3 aliases receives 3 rounds over
        4 topics (QoS 0 and 1 alternating). In the first round the first 3 topics come with
        their topic name and an alias each (all 3 slots used, distinct aliases), the 4th in
        full without alias; in later rounds every PUBLISH of an aliased topic has an EMPTY
        topic name and that topic's alias, and every PUBLISH resolves to its topic, in order."""
        base = unique("outuse")
        sub = self.subscriber(f"{base}/#", qos=1, properties={"topic_alias_maximum": 3})
        pub = self.raw_client()
        topics = [f"{base}/t{i}" for i in range(4)]
        expected = []
        for r in range(3):
            for i, topic in enumerate(topics):
                payload = f"{r}:{i}".encode()
                pub.publish(topic, payload, qos=(r + i) % 2)
                expected.append((topic, payload))
        got = sub.collect(3.0, quiet=1.0)
        self.assertEqual(self.resolve_all(got, 3), expected)
        first, later = got[:4], got[4:]
        alias_of = {m.topic: m.properties["topic_alias"] for m in first
                    if "topic_alias" in m.properties}
        self.assertEqual(sorted(alias_of), topics[:3], f"aliases set in round 1: {first}")
        self.assertEqual(sorted(alias_of.values()), [1, 2, 3])
        self.assertNotIn("topic_alias", first[3].properties)
        for i, m in enumerate(later):
            topic = topics[i % 4]
            wire = (m.topic, m.properties.get("topic_alias"))
            if topic in alias_of:
                self.assertEqual(wire, ("", alias_of[topic]), f"repeat of {topic}: {m!r}")
            else:
                self.assertEqual(wire, (topic, None), f"repeat of {topic}: {m!r}")
        for m in got:
            if m.qos:
                sub.puback(m.packet_id)

    @unittest.skipIf(against_mosquitto(), "Mosquitto 2.0.11 sends no outbound topic aliases")
    def test_aliases_start_over_on_a_new_connection(self):
        """Aliases belong to one connection [MQTT-3.3.2-7]: a persistent subscriber gets topic
        T with an alias, reconnects, and the message queued for T while it was away arrives
        with T's name again (the old alias is unknown to the new connection), then T's next
        message uses the new alias with an empty topic."""
        topic = unique("outnew")
        cid = unique("outnew-sub")
        persistent = {"session_expiry_interval": 300, "topic_alias_maximum": 2}
        sub = self.raw_client(client_id=cid, properties=persistent)
        self.assertEqual(sub.subscribe([(topic, 1)]).reason_codes, [1])
        pub = self.raw_client()
        pub.publish(topic, b"before", qos=1)
        m = sub.expect(PUBLISH)
        self.assertEqual((m.topic, m.payload), (topic, b"before"))
        self.assertIn("topic_alias", m.properties)  # T has an alias on the first connection
        sub.puback(m.packet_id)
        sub.disconnect()
        sub.close()
        pub.expect(PUBACK)
        pub.publish(topic, b"queued", qos=1)
        pub.expect(PUBACK)
        sub = self.raw_client(client_id=cid, clean_start=False, properties=persistent)
        self.assertTrue(self.connack.session_present)
        pub.publish(topic, b"after", qos=1)
        pub.expect(PUBACK)
        got = sub.collect(2.0, quiet=1.0)
        self.assertEqual(self.resolve_all(got, 2), [(topic, b"queued"), (topic, b"after")])
        queued, after = got
        self.assertEqual(queued.topic, topic, f"first PUBLISH after reconnecting: {queued!r}")
        self.assertIn("topic_alias", queued.properties)
        self.assertEqual((after.topic, after.properties.get("topic_alias")),
                         ("", queued.properties["topic_alias"]))
        for m in got:
            sub.puback(m.packet_id)
        sub.disconnect()
        self.raw_client(client_id=cid, clean_start=True).disconnect()

    def test_subscriber_without_alias_maximum_gets_no_alias(self):
        """A subscriber that announced no Topic Alias Maximum (0) never gets a Topic Alias."""
        base = unique("noalias")
        sub = self.subscriber(f"{base}/#", qos=0)
        pub = self.raw_client()
        for r in range(3):
            pub.publish(f"{base}/t", f"{r}".encode(), properties={"topic_alias": 1})
        got = sub.collect(2.0, quiet=1.0)
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [(f"{base}/t", b"0"), (f"{base}/t", b"1"), (f"{base}/t", b"2")])
        self.assertTrue(all("topic_alias" not in m.properties for m in got))


if __name__ == "__main__":
    unittest.main()
