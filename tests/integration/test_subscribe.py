"""SUBSCRIBE / UNSUBSCRIBE: topic matching, SUBACK and UNSUBACK codes, overlapping subscriptions
and the MQTT 5.0 subscription options (No Local, Retain As Published, Retain Handling,
Subscription Identifiers), and SUBACK codes when max_qos, wildcard and shared subscriptions or
subscription identifiers are limited by the configuration.

Every test runs for MQTT 3.1.1 and 5.0 where the feature exists in both. One broker per
TestCase class; each test uses its own topic prefix.
"""

import unittest

from harness import BrokerTestCase, against_mosquitto, subscription_ids, unique
from mqtt_raw import DISCONNECT, PUBLISH, SUBACK, encode_subscribe, encode_unsubscribe
from paho.mqtt.subscribeoptions import SubscribeOptions



def received_until_sentinel(client, sentinel_topic, timeout=5.0):
    """Messages received up to and including one on sentinel_topic, plus any stragglers
    arriving within 0.5 s after it. Returns the topics received, sentinel excluded."""
    topics = []
    while True:
        m = client.get(timeout)
        if m.topic == sentinel_topic:
            break
        topics.append(m.topic)
    topics += [m.topic for m in client.drain(0.5)]
    return topics


class SubscribeTests:
    """Shared by the 3.1.1 and 5.0 classes below (VERSION is 4 or 5)."""

    VERSION = None

    # $SYS every second so the "$SYS is not matched by #" test sees $SYS traffic.
    broker_config = "[sys]\ninterval = 1\n"
    mosquitto_config = "sys_interval 1\n"

    def setUp(self):
        super().setUp()
        self.p = unique("sub")  # topic prefix of this test

    def check_matching(self, filters, published, expected):
        """Subscribes one client to `filters`, publishes each topic in `published` (QoS 1) and
        asserts that exactly the topics in `expected` arrive, in publish order."""
        sub, pub = self.paho_client(), self.paho_client()
        end = f"{self.p}-end"  # matched by none of the filters under test
        codes = sub.subscribe([(f, 1) for f in filters] + [(end, 1)])
        self.assertEqual(codes, [1] * (len(filters) + 1))
        for t in published:
            pub.publish(t, b"m", qos=1)
        pub.publish(end, b"end", qos=1)
        self.assertEqual(received_until_sentinel(sub, end), expected)

    # ---------------------------------------------------------------- matching

    def test_exact_filter_matches_only_that_topic(self):
        """A filter without wildcards matches exactly one topic (case and levels matter)."""
        p = self.p
        self.check_matching([f"{p}/a/b"],
                            [f"{p}/a/b", f"{p}/a/c", f"{p}/a/b/c", f"{p}/a", f"{p}/A/b",
                             f"{p}/a/b/"],
                            [f"{p}/a/b"])

    def test_single_level_wildcard(self):
        """'+' matches exactly one level, including an empty one, and nothing deeper."""
        p = self.p
        self.check_matching([f"{p}/+/b"],
                            [f"{p}/x/b", f"{p}/x/c", f"{p}/x/y/b", f"{p}/b", f"{p}//b",
                             f"{p}/yy/b"],
                            [f"{p}/x/b", f"{p}//b", f"{p}/yy/b"])

    def test_single_level_wildcard_at_end(self):
        """'p/+' matches 'p/x' and 'p/' but not 'p' or 'p/x/y'."""
        p = self.p
        self.check_matching([f"{p}/+"],
                            [f"{p}/x", p, f"{p}/x/y", f"{p}/"],
                            [f"{p}/x", f"{p}/"])

    def test_multi_level_wildcard_matches_parent(self):
        """'a/#' matches 'a' itself and every topic below it, but not siblings like 'ab'."""
        p = self.p
        self.check_matching([f"{p}/a/#"],
                            [f"{p}/a", f"{p}/a/b", f"{p}/a/b/c", f"{p}/b", f"{p}/ab",
                             f"{p}/a/"],
                            [f"{p}/a", f"{p}/a/b", f"{p}/a/b/c", f"{p}/a/"])

    def test_dollar_topics_not_matched_by_leading_wildcards(self):
        """'#' and '+/...' do not match topics starting with '$'; '$x/#' and '$x/+' do."""
        dollar = "$" + self.p  # a client may publish to a $-topic other than $SYS
        wild = self.paho_client()
        wild.subscribe([("#", 1), ("+/y", 1), ("+", 1)])
        explicit = self.paho_client()
        self.assertEqual(explicit.subscribe([(f"{dollar}/#", 1), (f"{dollar}/+", 1)]), [1, 1])
        pub = self.paho_client()
        pub.publish(f"{dollar}/y", b"d", qos=1)
        pub.publish(dollar, b"d", qos=1)
        pub.publish(f"{self.p}/y", b"plain", qos=1)  # control: '#' does see normal topics
        # '$p/y' matches '$p/#' and '$p/+' (one or two copies); '$p' matches '$p/#' only.
        got = sorted(set(m.topic for m in explicit.collect(2) + explicit.drain(0.5)))
        self.assertEqual(got, sorted([f"{dollar}/y", dollar]))
        topics = [m.topic for m in wild.drain(1.0)]
        self.assertIn(f"{self.p}/y", topics)
        self.assertEqual([t for t in topics if t.startswith("$")], [])

    def test_sys_topics_not_matched_by_hash(self):
        """The broker's own $SYS messages reach '$SYS/#' but never '#' or '+/broker/#'."""
        wild = self.paho_client()
        wild.subscribe([("#", 0), ("+/broker/#", 0)])
        sys_sub = self.paho_client()
        self.assertEqual(sys_sub.subscribe("$SYS/#", 0), [0])
        first = sys_sub.get(timeout=5.0)
        self.assertTrue(first.topic.startswith("$SYS/"), first.topic)
        sys_sub.drain(0.2)
        leaked = [m.topic for m in wild.drain(1.5) if m.topic.startswith("$")]
        self.assertEqual(leaked, [])

    # ---------------------------------------------------------------- SUBACK and QoS

    def test_suback_grants_requested_qos_and_delivery_uses_minimum(self):
        """SUBACK grants QoS 0/1/2 as asked; delivery QoS is min(published, granted)."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        self.assertEqual(sub.subscribe([(f"{p}/q0", 0), (f"{p}/q1", 1), (f"{p}/q2", 2)]),
                         [0, 1, 2])
        for t in ("q0", "q1", "q2"):
            pub.publish(f"{p}/{t}", t.encode(), qos=2)
        pub.publish(f"{p}/q2", b"low", qos=1)
        got = [(m.topic, m.payload, m.qos) for m in sub.collect(4)]
        self.assertEqual(sorted(got), sorted([(f"{p}/q0", b"q0", 0), (f"{p}/q1", b"q1", 1),
                                              (f"{p}/q2", b"q2", 2), (f"{p}/q2", b"low", 1)]))
        sub.expect_nothing(0.5)

    def test_malformed_filter_closes_the_connection(self):
        """A filter that breaks the rules ('a/#/b', 'a/b#', 'a+/b', '', '$share/g/', '$share/g')
        is a protocol violation ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1],
        [MQTT-4.8.2-2]): no SUBACK, the connection is closed (5.0: DISCONNECT 0x81, Malformed
        Packet), and the valid filter in the same SUBSCRIBE is not applied. The same for
        UNSUBSCRIBE."""
        p = self.p
        closing = 0x81 if self.VERSION == 5 else None
        bad_filters = [f"{p}/#/b", f"{p}/b#", f"{p}+/b", ""]
        if not against_mosquitto():  # Mosquitto 2.0.11 takes these as ordinary filters
            bad_filters += ["$share/g/", "$share/g"]
        for bad in bad_filters:
            with self.subTest(filter=bad):
                r = self.raw_client()
                r.send(encode_subscribe(1, [(f"{p}/ok", 1), (bad, 0)], None, self.VERSION))
                self.assertEqual(r.wait_closed(5), closing)
                self.assertEqual([x for x in r.skipped if x.type == SUBACK], [])
                r = self.raw_client()
                r.send(encode_unsubscribe(1, [bad], None, self.VERSION))
                self.assertEqual(r.wait_closed(5), closing)
        r = self.raw_client()
        self.assertEqual(r.subscribe([(f"{p}/ok", 1)]).reason_codes, [1])
        self.paho_client().publish(f"{p}/ok", b"still works", qos=1)
        msg = r.expect(PUBLISH)
        self.assertEqual((msg.topic, msg.payload, msg.qos), (f"{p}/ok", b"still works", 1))

    def test_overlapping_subscriptions_deliver_at_highest_qos(self):
        """Overlapping filters: at least one copy arrives, and one of them at the highest
        granted QoS (MQTT-3.3.5-1 / MQTT-3.3.4-2)."""
        if self.VERSION == 4 and against_mosquitto():
            self.skipTest("Mosquitto 2.0.11 (3.1.1) sends one copy at the QoS of the "
                          "exact-match subscription, not the maximum of all matching ones")
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        self.assertEqual(sub.subscribe([(f"{p}/x", 1), (f"{p}/+", 2), (f"{p}/#", 0)]), [1, 2, 0])
        pub.publish(f"{p}/x", b"overlap", qos=2)
        got = [sub.get()] + sub.drain(1.0)
        self.assertGreaterEqual(len(got), 1)
        self.assertTrue(all(m.payload == b"overlap" for m in got))
        self.assertEqual(max(m.qos for m in got), 2)

    # ---------------------------------------------------------------- UNSUBSCRIBE

    def test_unsubscribe_stops_delivery(self):
        """After UNSUBACK nothing more arrives on the removed filter; other filters continue."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        sub.subscribe([(f"{p}/a", 1), (f"{p}/b", 1)])
        pub.publish(f"{p}/a", b"1", qos=1)
        self.assertEqual(sub.get().payload, b"1")
        codes = sub.unsubscribe(f"{p}/a")
        self.assertEqual(codes, [0] if self.VERSION == 5 else [])
        pub.publish(f"{p}/a", b"2", qos=1)
        pub.publish(f"{p}/b", b"3", qos=1)
        self.assertEqual(received_until_sentinel(sub, f"{p}/b"), [])

    def test_resubscribe_replaces_options(self):
        """SUBSCRIBE with an existing filter replaces it: one copy per publish, at the new QoS
        (MQTT-3.8.4-3)."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        self.assertEqual(sub.subscribe(f"{p}/t", 0), [0])
        pub.publish(f"{p}/t", b"a", qos=2)
        self.assertEqual(sub.get().qos, 0)
        self.assertEqual(sub.subscribe(f"{p}/t", 2), [2])
        pub.publish(f"{p}/t", b"b", qos=2)
        got = [sub.get()] + sub.drain(0.7)
        self.assertEqual([(m.payload, m.qos) for m in got], [(b"b", 2)])
        self.assertEqual(sub.subscribe(f"{p}/t", 1), [1])
        pub.publish(f"{p}/t", b"c", qos=2)
        got = [sub.get()] + sub.drain(0.7)
        self.assertEqual([(m.payload, m.qos) for m in got], [(b"c", 1)])


class Subscribe311(SubscribeTests, BrokerTestCase):
    VERSION = 4


class Subscribe5(SubscribeTests, BrokerTestCase):
    VERSION = 5

    def test_unsuback_no_subscription_existed(self):
        """UNSUBACK reason 0x11 for a filter with no subscription, 0x00 for an existing one."""
        sub = self.paho_client()
        sub.subscribe(f"{self.p}/exists", 1)
        self.assertEqual(sub.unsubscribe([f"{self.p}/exists", f"{self.p}/never"]), [0x00, 0x11])
        self.assertEqual(sub.unsubscribe(f"{self.p}/exists"), [0x11])

    @unittest.skipIf(against_mosquitto(),
                     "Mosquitto 2.0.11 sends one copy per matching subscription (allowed by "
                     "MQTT-3.3.4-2 'MAY deliver further copies'); Starling sends one copy")
    def test_overlapping_single_copy_carries_all_subscription_ids(self):
        """Starling sends ONE copy for overlapping subscriptions, at the highest granted QoS,
        carrying every matching subscription identifier (MQTT-3.3.4-4)."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        sub.subscribe(f"{p}/x", options=SubscribeOptions(1), sub_id=11)
        sub.subscribe(f"{p}/+", options=SubscribeOptions(2), sub_id=22)
        sub.subscribe(f"{p}/#", options=SubscribeOptions(0), sub_id=33)
        sub.subscribe(f"{p}/other/#", options=SubscribeOptions(2), sub_id=44)  # not matching
        pub.publish(f"{p}/x", b"once", qos=2)
        got = [sub.get()] + sub.drain(1.0)
        self.assertEqual(len(got), 1, [(m.qos, subscription_ids(m)) for m in got])
        self.assertEqual((got[0].payload, got[0].qos), (b"once", 2))
        self.assertEqual(subscription_ids(got[0]), [11, 22, 33])

    def test_overlapping_copies_report_subscription_ids(self):
        """Whether one copy or one per subscription is sent, the identifiers of all matching
        subscriptions arrive: all in a single copy (MQTT-3.3.4-4) or one per copy
        (MQTT-3.3.4-5); the copy for a QoS 2 subscription is at QoS 2."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        sub.subscribe(f"{p}/x", options=SubscribeOptions(1), sub_id=11)
        sub.subscribe(f"{p}/+", options=SubscribeOptions(2), sub_id=22)
        sub.subscribe(f"{p}/#", options=SubscribeOptions(0), sub_id=33)
        pub.publish(f"{p}/x", b"m", qos=2)
        got = [sub.get()] + sub.drain(1.0)
        if len(got) == 1:
            self.assertEqual(subscription_ids(got[0]), [11, 22, 33])
            self.assertEqual(got[0].qos, 2)
        else:
            per_copy = sorted((subscription_ids(m), m.qos) for m in got)
            self.assertEqual(per_copy, [([11], 1), ([22], 2), ([33], 0)])

    def test_subscription_identifier_on_delivery(self):
        """A message carries the identifier of the subscription it matched (live and retained);
        re-subscribing with a new identifier replaces it; no identifier means none sent."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        pub.publish(f"{p}/r", b"retained", qos=1, retain=True)
        sub.subscribe(f"{p}/r", options=SubscribeOptions(1), sub_id=268435455)  # max varint
        m = sub.get()
        self.assertEqual((m.payload, m.retain, subscription_ids(m)), (b"retained", 1, [268435455]))
        pub.publish(f"{p}/r", b"live", qos=1)
        self.assertEqual(subscription_ids(sub.get()), [268435455])
        sub.subscribe(f"{p}/r", options=SubscribeOptions(1, retainHandling=2), sub_id=7)
        pub.publish(f"{p}/r", b"live2", qos=1)
        m = sub.get()
        self.assertEqual((m.payload, subscription_ids(m)), (b"live2", [7]))
        sub.subscribe(f"{p}/n", 1)
        pub.publish(f"{p}/n", b"noid", qos=1)
        m = sub.get()
        self.assertEqual((m.payload, subscription_ids(m)), (b"noid", []))
        pub.publish(f"{p}/r", b"", qos=1, retain=True)

    def test_no_local(self):
        """No Local: the subscriber's own publishes are not sent back to it; others' are."""
        p = self.p
        me, other = self.paho_client(), self.paho_client()
        self.assertEqual(me.subscribe(f"{p}/nl", options=SubscribeOptions(1, noLocal=True)), [1])
        other.subscribe(f"{p}/nl", 1)
        me.publish(f"{p}/nl", b"mine", qos=1)
        self.assertEqual(other.get().payload, b"mine")
        other.publish(f"{p}/nl", b"theirs", qos=1)
        self.assertEqual(other.get().payload, b"theirs")  # other has no No Local
        got = [me.get()] + me.drain(0.7)
        self.assertEqual([m.payload for m in got], [b"theirs"])

    def test_retain_as_published(self):
        """A live retained publish keeps retain=1 only on Retain As Published subscriptions;
        a non-retained publish arrives with retain=0 either way."""
        p = self.p
        sub, pub = self.paho_client(), self.paho_client()
        sub.subscribe(f"{p}/rap", options=SubscribeOptions(1, retainAsPublished=True))
        sub.subscribe(f"{p}/plain", options=SubscribeOptions(1))
        pub.publish(f"{p}/rap", b"r1", qos=1, retain=True)
        pub.publish(f"{p}/plain", b"r2", qos=1, retain=True)
        pub.publish(f"{p}/rap", b"n1", qos=1)
        got = sorted((m.topic, m.payload, m.retain) for m in sub.collect(3))
        self.assertEqual(got, sorted([(f"{p}/rap", b"r1", 1), (f"{p}/plain", b"r2", 0),
                                      (f"{p}/rap", b"n1", 0)]))
        for t in ("rap", "plain"):
            pub.publish(f"{p}/{t}", b"", qos=1, retain=True)

    def test_retain_handling(self):
        """Retain Handling 0: retained sent on every SUBSCRIBE; 1: only when the subscription
        is new; 2: never."""
        p = self.p
        pub = self.paho_client()
        pub.publish(f"{p}/r", b"kept", qos=1, retain=True)

        def subscribe_and_get(client, rh):
            self.assertEqual(client.subscribe(f"{p}/r", options=SubscribeOptions(1, retainHandling=rh)), [1])
            return [(m.payload, m.retain) for m in client.drain(0.7)]

        c0 = self.paho_client()
        self.assertEqual(subscribe_and_get(c0, 0), [(b"kept", 1)])
        self.assertEqual(subscribe_and_get(c0, 0), [(b"kept", 1)])  # existing: sent again

        c1 = self.paho_client()
        self.assertEqual(subscribe_and_get(c1, 1), [(b"kept", 1)])  # new subscription
        self.assertEqual(subscribe_and_get(c1, 1), [])              # exists already
        c1.unsubscribe(f"{p}/r")
        self.assertEqual(subscribe_and_get(c1, 1), [(b"kept", 1)])  # new again

        c2 = self.paho_client()
        self.assertEqual(subscribe_and_get(c2, 2), [])
        self.assertEqual(subscribe_and_get(c2, 2), [])
        pub.publish(f"{p}/r", b"live", qos=1)  # live messages still flow with RH 2
        self.assertEqual(c2.get().payload, b"live")
        pub.publish(f"{p}/r", b"", qos=1, retain=True)


class SubscribeFeaturesOff(BrokerTestCase):
    """A broker with max_qos 1 and wildcard subscriptions, shared subscriptions and subscription
    identifiers turned off (Mosquitto: only max_qos 1; it has no switches for the others)."""

    broker_config = ("[mqtt]\nmax_qos = 1\nwildcard_subscriptions = false\n"
                     "shared_subscriptions = false\nsubscription_identifiers = false\n")
    mosquitto_config = "max_qos 1\n"

    def test_max_qos_caps_granted_qos(self):
        """max_qos 1: a QoS 2 request is granted QoS 1 (3.1.1 and 5.0), and a QoS 1 delivery
        arrives at QoS 1."""
        p = unique("off")
        for version in (4, 5):
            with self.subTest(version=version):
                r = self.raw_client(version)
                self.assertEqual(r.subscribe([(f"{p}/{version}", 2), (f"{p}/{version}/0", 0)])
                                 .reason_codes, [1, 0])
                pub = self.paho_client(version)
                pub.publish(f"{p}/{version}", b"q1", qos=1)
                m = r.expect(PUBLISH)
                self.assertEqual((m.payload, m.qos), (b"q1", 1))

    @unittest.skipIf(against_mosquitto(), "Mosquitto cannot turn wildcard subscriptions off")
    def test_wildcards_not_supported(self):
        """Wildcard filters get 0xA2 (5.0) / 0x80 (3.1.1); an exact filter is still granted."""
        p = unique("off")
        for version, bad in ((5, 0xA2), (4, 0x80)):
            with self.subTest(version=version):
                codes = self.raw_client(version).subscribe([(f"{p}/+", 1), (f"{p}/#", 1), ("#", 0),
                                                     (f"{p}/exact", 1)]).reason_codes
                self.assertEqual(codes, [bad, bad, bad, 1])

    @unittest.skipIf(against_mosquitto(), "Mosquitto cannot turn shared subscriptions off")
    def test_shared_not_supported(self):
        """$share filters get 0x9E (5.0) / 0x80 (3.1.1)."""
        p = unique("off")
        for version, bad in ((5, 0x9E), (4, 0x80)):
            with self.subTest(version=version):
                codes = self.raw_client(version).subscribe([(f"$share/g/{p}/t", 1), (f"{p}/t", 1)])\
                    .reason_codes
                self.assertEqual(codes, [bad, 1])

    @unittest.skipIf(against_mosquitto(), "Mosquitto cannot turn subscription identifiers off")
    def test_subscription_identifiers_not_supported(self):
        """A 5.0 SUBSCRIBE with a Subscription Identifier when they are off is refused with
        0xA1, in SUBACK or in a DISCONNECT."""
        r = self.raw_client(5)
        r.send(encode_subscribe(1, [(f"{unique('off')}/t", 1)], {"subscription_identifier": 3}))
        answer = r.recv_packet(timeout=5.0)
        self.assertIsNotNone(answer)
        if answer.type == SUBACK:
            self.assertEqual(answer.reason_codes, [0xA1])
        else:
            self.assertEqual((answer.type, answer.reason_code), (DISCONNECT, 0xA1))


if __name__ == "__main__":
    unittest.main()
