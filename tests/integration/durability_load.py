"""Load for the crash and power-cut tests: QoS 1 and QoS 2 publishers, persistent subscribers
online and offline, a retained stream and a delayed will, with a fault between rounds.

After the last round every message acknowledged to a publisher (PUBACK at QoS 1, PUBREC at
QoS 2) must have reached both subscribers, QoS 2 exactly once; each retained topic must hold
its last acknowledged message or a later one; the delayed will must arrive.
"""

import collections
import time

from mqtt_raw import CONNACK, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, ConnectionClosed, RawClient

PERSISTENT = {"session_expiry_interval": 3600}


def connect(port, cid, clean=False):
    c = RawClient(port, version=5)
    ack = c.connect(cid, clean_start=clean, properties=PERSISTENT)
    assert ack.type == CONNACK and ack.reason_code == 0, ack
    return c, ack


def close(client):
    if client is not None:
        client.close()


class Publisher:
    """Publishes numbered messages with a window; remembers what the broker acknowledged
    (PUBACK for QoS 1, PUBREC for QoS 2) and resends the rest after a reconnect."""

    def __init__(self, cid, topic, qos, window=20, retained_topics=0):
        self.cid, self.topic, self.qos, self.window = cid, topic, qos, window
        # retained_topics > 0: retained messages, spread over topic/0 .. topic/N-1.
        self.retained_topics = retained_topics
        self.next_seq = 0
        self.pending = {}  # packet id -> [seq, stage]; stage "pub" or "rel"
        self.acked = set()
        self.client = None

    def topic_for(self, seq):
        if self.retained_topics:
            return f"{self.topic}/{seq % self.retained_topics}"
        return self.topic

    def send(self, seq, pid, dup=False):
        self.client.publish(self.topic_for(seq), self.payload(seq), qos=self.qos, packet_id=pid,
                            dup=dup, retain=bool(self.retained_topics))

    def connect(self, port, clean):
        close(self.client)
        self.client, _ = connect(port, self.cid, clean)
        for pid, (seq, stage) in sorted(self.pending.items()):
            if stage == "pub":
                self.send(seq, pid, dup=True)
            else:
                self.client.pubrel(pid)

    def payload(self, seq):
        return f"{self.cid}:{seq}".encode()

    def step(self):
        if len(self.pending) >= self.window:
            return
        pid = (self.next_seq % 60000) + 1
        self.pending[pid] = [self.next_seq, "pub"]
        self.send(self.next_seq, pid)
        self.next_seq += 1

    def handle(self, p):
        entry = self.pending.get(p.packet_id)
        if entry is None:
            return
        if p.type == PUBACK and self.qos == 1:
            self.acked.add(entry[0])
            del self.pending[p.packet_id]
        elif p.type == PUBREC and self.qos == 2:
            self.acked.add(entry[0])
            entry[1] = "rel"
            self.client.pubrel(p.packet_id)
        elif p.type == PUBCOMP and self.qos == 2:
            del self.pending[p.packet_id]


class Subscriber:
    """Counts application deliveries; QoS 2 ids awaiting PUBREL are not delivered twice
    (the receiver's side of exactly once, method B of section 4.3.3)."""

    def __init__(self, cid, filters):
        self.cid, self.filters = cid, filters
        self.received = collections.Counter()
        self.awaiting_rel = set()
        self.client = None

    def connect(self, port, clean):
        close(self.client)
        self.client, _ = connect(port, self.cid, clean)
        if clean:
            self.client.subscribe(self.filters)

    def handle(self, p):
        if p.type == PUBLISH:
            if p.qos == 2:
                if p.packet_id not in self.awaiting_rel:
                    self.received[p.payload] += 1
                    self.awaiting_rel.add(p.packet_id)
                self.client.pubrec(p.packet_id)
            else:
                self.received[p.payload] += 1
                if p.qos == 1:
                    self.client.puback(p.packet_id)
        elif p.type == PUBREL:
            self.awaiting_rel.discard(p.packet_id)
            self.client.pubcomp(p.packet_id)


def poll(peer, wait=0.002):
    """Handles whatever the peer has received; False when its connection is gone."""
    try:
        while True:
            p = peer.client.recv_packet(wait)
            if p is None:
                return True
            peer.handle(p)
            wait = 0
    except (ConnectionClosed, OSError):
        return False


class LoadWithFaults:
    """One run: setup(port), then round(port) and after_fault(port) as often as the test wants
    faults, then check(testcase, port). prefix keeps client ids and topics apart."""

    WILL_PAYLOAD = b"last words"

    def __init__(self, rng, prefix, retained=False, will=False):
        self.rng, self.prefix, self.will = rng, prefix, will
        filters = [(f"{prefix}/q1", 1), (f"{prefix}/q2", 2), (f"{prefix}/will", 1)]
        self.online = Subscriber(f"{prefix}-online", filters)
        self.offline = Subscriber(f"{prefix}-offline", filters)
        self.pubs = [Publisher(f"{prefix}-p1", f"{prefix}/q1", 1),
                     Publisher(f"{prefix}-p2", f"{prefix}/q2", 2)]
        if retained:
            self.pubs.append(Publisher(f"{prefix}-ret", f"{prefix}/ret", 1, retained_topics=5))
        self.will_sent = False

    def setup(self, port):
        for s in (self.online, self.offline):
            s.connect(port, clean=True)
        self.offline.client.disconnect()
        self.offline.client.close()
        for p in self.pubs:
            p.connect(port, clean=True)

    def round(self, port, steps=None):
        steps = self.rng.randint(80, 250) if steps is None else steps
        for i in range(steps):
            if self.will and not self.will_sent and i == steps // 2:
                self.leave_will(port)
            for p in self.pubs:
                try:
                    p.step()
                except OSError:
                    pass
            for peer in self.pubs + [self.online]:
                poll(peer)

    def leave_will(self, port):
        """A persistent client with a delayed will loses its connection: the will waits 2 s,
        so a fault soon after finds it pending in the store."""
        c = RawClient(port, version=5)
        c.connect(f"{self.prefix}-will", clean_start=True, properties=PERSISTENT,
                  will={"topic": f"{self.prefix}/will", "payload": self.WILL_PAYLOAD, "qos": 1,
                        "properties": {"will_delay_interval": 2}})
        c.close()  # no DISCONNECT: the will is due in 2 s
        self.will_sent = True

    def after_fault(self, port):
        for peer in self.pubs + [self.online]:
            peer.connect(port, clean=False)

    def check(self, test, port):
        # Let every publisher finish its exchanges.
        deadline = time.monotonic() + 30
        while any(p.pending for p in self.pubs) and time.monotonic() < deadline:
            for peer in self.pubs + [self.online]:
                poll(peer, 0.01)
        test.assertFalse(any(p.pending for p in self.pubs), "publishers did not complete")
        drain_until = time.monotonic() + (4 if self.will else 2)
        while time.monotonic() < drain_until:
            poll(self.online, 0.05)

        self.offline.connect(port, clean=False)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 2 and time.monotonic() < deadline + 30:
            before = sum(self.offline.received.values())
            poll(self.offline, 0.05)
            if sum(self.offline.received.values()) != before:
                quiet_since = time.monotonic()

        for sub in (self.online, self.offline):
            for pub in self.pubs:
                if pub.retained_topics:
                    continue
                expected = {pub.payload(s) for s in pub.acked}
                test.assertTrue(expected, "nothing was acknowledged")
                missing = expected - set(sub.received)
                test.assertFalse(bool(missing), f"{sub.cid} lost {len(missing)} acknowledged messages "
                                          f"of {pub.cid}: {sorted(missing)[:5]}")
            q2 = f"{self.prefix}-p2:".encode()
            q2_dups = {m: n for m, n in sub.received.items() if m.startswith(q2) and n > 1}
            test.assertFalse(q2_dups, f"{sub.cid} got QoS 2 duplicates: {q2_dups}")
        for peer in self.pubs + [self.online, self.offline]:
            close(peer.client)
        if self.will:
            test.assertIn(self.WILL_PAYLOAD, self.online.received, "the delayed will was lost")
        for pub in self.pubs:
            if pub.retained_topics:
                self.check_retained(test, port, pub)

    def check_retained(self, test, port, pub):
        """Each topic holds its last acknowledged message or a later one (sent, maybe stored,
        not acknowledged before the fault)."""
        last_acked = {}
        for seq in pub.acked:
            topic = pub.topic_for(seq)
            last_acked[topic] = max(seq, last_acked.get(topic, -1))
        test.assertTrue(last_acked, "no retained message was acknowledged")
        c, _ = connect(port, f"{self.prefix}-ret-check", clean=True)
        c.subscribe([(f"{pub.topic}/#", 1)])
        held = {}
        while True:
            p = c.recv_packet(1.0)
            if p is None:
                break
            if p.type == PUBLISH:
                held[p.topic] = int(p.payload.split(b":")[1])
                if p.qos == 1:
                    c.puback(p.packet_id)
        c.close()
        for topic, seq in last_acked.items():
            test.assertIn(topic, held, f"retained message of {topic} lost")
            test.assertGreaterEqual(held[topic], seq,
                                    f"{topic} holds an older message than the last acknowledged")
