"""PROXY protocol (HAProxy's v1 text and v2 binary headers) on a listener with
`proxy_protocol = true`, through real sockets: the header's source address becomes the
client's address (shown as "peer" in GET /api/v1/clients/<id>, and counted by the per-address
limits), a LOCAL command keeps the socket's own address, a header may arrive in pieces, and a
connection without a valid header is closed and counted
(starling_handshake_failures_total{layer="proxy"}).

Each broker has a plain listener (the harness's port) and a PROXY protocol one. Starling-
specific; skipped against Mosquitto. The helpers and the per-test broker come from test_limits.
"""

import ipaddress
import json
import random
import socket
import struct
import time
import unittest

from harness import free_port, http_get, metric, unique
from mqtt_raw import (CONNACK, PINGRESP, PUBACK, PUBLISH, RawClient, encode_connect)
import test_limits as limits

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(source, destination="192.0.2.10", source_port=1111, destination_port=1883,
       family="TCP4"):
    return f"PROXY {family} {source} {destination} {source_port} {destination_port}\r\n".encode()


def v2(source=None, destination=None, source_port=0, destination_port=1883, command=1,
       family=None, tlvs=b"", version=2, length=None):
    """A v2 header. family defaults from the source address: 0x11 (TCP over IPv4) or 0x21 (TCP
    over IPv6); without a source the address block is empty (family 0, UNSPEC)."""
    if source is None:
        block, fam = b"", 0x00
    elif ":" in source:
        block = (socket.inet_pton(socket.AF_INET6, source)
                 + socket.inet_pton(socket.AF_INET6, destination or "2001:db8::ffff")
                 + struct.pack("!HH", source_port, destination_port))
        fam = 0x21
    else:
        block = (socket.inet_pton(socket.AF_INET, source)
                 + socket.inet_pton(socket.AF_INET, destination or "192.0.2.10")
                 + struct.pack("!HH", source_port, destination_port))
        fam = 0x11
    block += tlvs
    return (V2_SIGNATURE + bytes([(version << 4) | command, fam if family is None else family])
            + struct.pack("!H", len(block) if length is None else length) + block)


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def peer_of(address, port):
    """How the API writes an address and port: 1.2.3.4:5 or [2001:db8::1]:5."""
    ip = ipaddress.ip_address(address)
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip}:{port}"


class ProxyTest(limits.LimitTest):
    LIMITS = "connect_timeout_ms = 1500\n"

    def setUp(self):
        super().setUp()
        self.proxy_port = free_port()
        self.start(f"""
[listeners.plain]
bind = "127.0.0.1:{free_port()}"

[listeners.proxied]
bind = "127.0.0.1:{self.proxy_port}"
proxy_protocol = true

[limits]
{self.LIMITS}""")

    def proxy_failures(self):
        return metric(self.broker.http_port, "starling_handshake_failures_total", layer="proxy")

    def open_proxied(self, version=5):
        """A raw connection to the PROXY protocol listener (retried while it is not up)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                c = RawClient(self.proxy_port, version)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.clients.append(c)
        return c

    def proxied(self, header, client_id=None, pieces=None, version=5, pause=0.05):
        """Sends header then CONNECT, in one write or in the given pieces (byte strings that
        together are header + CONNECT, written `pause` seconds apart). Returns (client, first
        answer: a CONNACK, or None when the broker closed the connection without one)."""
        c = self.open_proxied(version)
        connect = encode_connect(client_id or unique("px"), version)
        try:
            if pieces is None:
                c.send_bytes(header + connect)
            else:
                self.assertEqual(b"".join(pieces), header + connect)
                for piece in pieces:
                    c.send_bytes(piece)
                    time.sleep(pause)
            p = c.recv_packet(5)
        except limits.CLOSED_ERRORS:
            return c, None
        self.assertIsNotNone(p, "neither CONNACK nor close in 5 s")
        self.assertEqual(p.type, CONNACK, p)
        return c, p

    def view(self, client_id):
        status, body = http_get(self.broker.http_port, f"/api/v1/clients/{client_id}")
        return status, (json.loads(body) if status == 200 else body)

    def assert_peer(self, client_id, expected):
        status, view = self.view(client_id)
        self.assertEqual(status, 200, view)
        self.assertTrue(view["connected"], view)
        self.assertEqual(view["peer"], expected)


class Headers(ProxyTest):

    def connect_and_check(self, header, expected_peer, **kw):
        cid = unique("px")
        c, ack = self.proxied(header, cid, **kw)
        self.assertIsNotNone(ack, "closed: the header was not accepted")
        self.assertEqual(ack.reason_code, 0)
        self.assert_peer(cid, expected_peer)
        # The connection carries MQTT normally after the header.
        topic = unique("px")
        self.assertEqual(c.subscribe([(topic, 1)]).reason_codes, [1])
        c.publish(topic, b"through the proxy", qos=1)
        got = {p.type: p for p in (c.recv_packet(5), c.recv_packet(5)) if p}
        self.assertEqual(set(got), {PUBACK, PUBLISH})
        self.assertEqual(got[PUBLISH].payload, b"through the proxy")
        return c

    def test_v1_tcp4(self):
        """PROXY TCP4 1.2.3.4 5.6.7.8 1111 1883 then CONNECT in the same write: connected, and
        the API shows the client at 1.2.3.4:1111."""
        self.connect_and_check(v1("1.2.3.4", "5.6.7.8", 1111, 1883), "1.2.3.4:1111")

    def test_v1_tcp6(self):
        self.connect_and_check(v1("2001:db8::1", "2001:db8::2", 2222, 1883, family="TCP6"),
                               "[2001:db8::1]:2222")

    def test_v2_ipv4_with_tlvs(self):
        """v2 PROXY over TCP/IPv4 with TLVs after the addresses (authority, NOOP), which are
        skipped: the API shows 10.1.2.3:40000."""
        tlvs = tlv(0x02, b"mqtt.example.com") + tlv(0x04, b"\x00" * 5)
        self.connect_and_check(v2("10.1.2.3", source_port=40000, tlvs=tlvs), "10.1.2.3:40000")

    def test_v2_ipv6(self):
        source = "2001:db8:0:1::7"
        self.connect_and_check(v2(source, source_port=40001), peer_of(source, 40001))

    def test_longest_headers_accepted(self):
        """The largest headers the spec allows: v1 TCP6 with the longest addresses and ports
        (104 bytes), v1 UNKNOWN with them (107 bytes, the v1 maximum), v2 IPv4 with 4084
        bytes of TLVs (the 4 KiB address block Starling accepts). A v1 header of 108 bytes
        is refused."""
        full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        tcp6 = f"PROXY TCP6 {full} {full} 65535 65535\r\n".encode()
        unknown = f"PROXY UNKNOWN {full} {full} 65535 65535\r\n".encode()
        self.assertEqual((len(tcp6), len(unknown)), (104, 107))
        self.connect_and_check(tcp6, f"[{full}]:65535")
        cid = unique("long")
        c, ack = self.proxied(unknown, cid)
        self.assertIsNotNone(ack, "closed: a 107-byte v1 UNKNOWN header was not accepted")
        self.assert_peer(cid, peer_of(*c.sock.getsockname()))
        big = v2("10.7.7.7", source_port=7, tlvs=tlv(0x04, b"\x00" * (4096 - 12 - 3)))
        self.assertEqual(len(big), 16 + 4096)
        self.connect_and_check(big, "10.7.7.7:7")
        failures = self.proxy_failures()
        too_long = unknown[:-2] + b"0\r\n"
        self.assertEqual(len(too_long), 108)
        _, ack = self.proxied(too_long)
        self.assertIsNone(ack, f"a 108-byte v1 header was accepted: {ack!r}")
        self.assertEqual(self.proxy_failures() - failures, 1)

    def test_local_command_and_unknown_keep_the_socket_address(self):
        """A v2 LOCAL command (the balancer's own health check), a v2 PROXY with family UNSPEC
        and v1 PROXY UNKNOWN carry no client address: the socket's own peer is shown."""
        for name, header in (("v2 LOCAL", v2(command=0)),
                             ("v2 LOCAL with an address block", v2("10.0.0.9", command=0)),
                             ("v2 UNSPEC", v2(command=1)),
                             ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n"),
                             ("v1 UNKNOWN with addresses",
                              b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")):
            with self.subTest(header=name):
                cid = unique("local")
                c, ack = self.proxied(header, cid)
                self.assertIsNotNone(ack, "closed: the header was not accepted")
                self.assertEqual(ack.reason_code, 0)
                self.assert_peer(cid, peer_of(*c.sock.getsockname()))

    def test_header_split_over_several_sends(self):
        """The header arrives in pieces (inside "PROXY", inside an address, between CR and LF;
        for v2 inside the signature and inside the address block), the CONNECT separately or
        glued to the header's last piece: each connects with the proxied address."""
        h1 = v1("198.51.100.7", "192.0.2.1", 5555, 1883)
        h2 = v2("203.0.113.9", source_port=6666)
        cases = (
            ("v1", h1, [h1[:3], h1[3:14], h1[14:-1], h1[-1:]], "198.51.100.7:5555"),
            ("v1 byte by byte", h1, [h1[i:i + 1] for i in range(len(h1))], "198.51.100.7:5555"),
            ("v2", h2, [h2[:5], h2[5:14], h2[14:20], h2[20:]], "203.0.113.9:6666"),
        )
        # All pieces arrive well within connect_timeout_ms (1500): 5 ms apart byte by byte.
        for name, header, pieces, expected in cases:
            for glued in (False, True):
                with self.subTest(header=name, connect_glued_to_last_piece=glued):
                    cid = unique("split")
                    connect = encode_connect(cid)
                    sends = (pieces[:-1] + [pieces[-1] + connect]) if glued else (
                        pieces + [connect])
                    c, ack = self.proxied(header, cid, pieces=sends,
                                          pause=0.005 if len(sends) > 10 else 0.05)
                    self.assertIsNotNone(ack, "closed: the split header was not accepted")
                    self.assertEqual(ack.reason_code, 0)
                    self.assert_peer(cid, expected)

    def test_no_header_or_invalid_header_closed_and_counted(self):
        """A CONNECT without a header, and a series of invalid headers each followed by a
        CONNECT: every connection is closed with nothing sent back, counted
        handshake_failures{layer="proxy"} once each, and no session is created."""
        rng = random.Random(5)
        ok_v1 = v1("1.2.3.4", "5.6.7.8", 1111, 1883)
        cases = {
            "no header": b"",
            "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "lower-case proxy": ok_v1.replace(b"PROXY", b"proxy"),
            "v1 unknown protocol": v1("1.2.3.4", family="TCP5"),
            "v1 invalid address": v1("999.1.2.3"),
            "v1 IPv6 address as TCP4": v1("2001:db8::1"),
            "v1 missing port": b"PROXY TCP4 1.2.3.4 5.6.7.8 1111\r\n",
            "v1 port with a leading zero": v1("1.2.3.4", source_port="01111"),
            "v1 port over 65535": v1("1.2.3.4", source_port=65536),
            "v1 LF without CR": ok_v1[:-2] + b"\n",
            "v1 longer than 107 bytes": b"PROXY TCP4 " + b"1" * 120 + b"\r\n",
            "v2 version 1": v2("10.0.0.1", version=1),
            "v2 command 2": v2("10.0.0.1", command=2),
            "v2 UDP over IPv4": v2("10.0.0.1", family=0x12),
            "v2 unknown family": v2("10.0.0.1", family=0x41),
            "v2 IPv4 block too short": v2(family=0x11, tlvs=b"\x01\x02\x03\x04"),
            "v2 longer than allowed": v2(length=5000) + b"\x00" * 5000,
            "v2 bad signature": b"\r\n\r\n\x00\r\nQUIT\r" + v2("10.0.0.1")[12:],
            "random": bytes(rng.randrange(256) for _ in range(200)),
        }
        before_failures = self.proxy_failures()
        before = self.all_hits()
        ids = {}
        for name, header in cases.items():
            with self.subTest(header=name):
                cid = unique("bad")
                ids[name] = cid
                c, ack = self.proxied(header, cid)
                self.assertIsNone(ack, f"{name}: answered {ack!r}")
                self.assertEqual(c.buf, bytearray())  # nothing at all came back
        for name, cid in ids.items():
            self.assertEqual(self.view(cid)[0], 404, name)
        self.assertEqual(self.proxy_failures() - before_failures, len(cases))
        self.assert_hit_deltas(before, {})

    def test_silent_or_partial_header_closed_by_connect_timeout(self):
        """A connection that sends nothing, one that stops inside a v1 header and one that
        stops after the v2 signature are closed by connect_timeout_ms (1500) and counted
        connect_timeout; a proxied client connected meanwhile stays."""
        before = self.all_hits()
        silent, partial1, partial2 = (self.open_proxied() for _ in range(3))
        partial1.send_bytes(b"PROXY TCP4 1.2")
        partial2.send_bytes(V2_SIGNATURE)
        cid = unique("ok")
        ok, ack = self.proxied(v1("192.0.2.77"), cid)
        self.assertEqual(ack.reason_code, 0)
        for c in (silent, partial1, partial2):
            self.assertIsNone(c.wait_closed(10))
            self.assertEqual(c.skipped, [])
        time.sleep(1.0)  # the proxied client is now well past the connect timeout
        ok.ping()
        ok.expect(PINGRESP)
        self.assert_peer(cid, "192.0.2.77:1111")
        self.assert_hit_deltas(before, {"connect_timeout": 3})

    def test_plain_listener_has_no_proxy_layer(self):
        """On the plain listener of the same broker a PROXY header is not understood (it is
        not MQTT: closed), and a normal client shows its own socket address."""
        c = limits.SourceClient(self.port)
        self.clients.append(c)
        c.send_bytes(v1("1.2.3.4") + encode_connect(unique("plain")))
        self.assertIsNone(c.wait_closed(5))
        cid = unique("plain")
        plain = self.client(client_id=cid)
        self.assert_peer(cid, peer_of(*plain.sock.getsockname()))


class AddressLimits(ProxyTest):
    LIMITS = "max_connections_per_address = 1\n"

    def test_per_address_limit_applies_to_the_proxied_address(self):
        """max_connections_per_address = 1 behind the proxy (every socket comes from
        127.0.0.1): a second connection from 10.0.0.1 is refused (closed without CONNACK,
        counted max_connections_per_address), one from 10.0.0.2 is accepted; when the first
        10.0.0.1 client leaves, 10.0.0.1 may connect again."""
        first_id = unique("a1")
        first, ack = self.proxied(v1("10.0.0.1", source_port=1000), first_id)
        self.assertEqual(ack.reason_code, 0)
        before = self.all_hits()
        failures = self.proxy_failures()
        second, ack = self.proxied(v1("10.0.0.1", source_port=1001))
        self.assertIsNone(ack, f"a second connection from 10.0.0.1 was admitted: {ack!r}")
        v2_second, ack = self.proxied(v2("10.0.0.1", source_port=1002))
        self.assertIsNone(ack, f"a second connection from 10.0.0.1 (v2) was admitted: {ack!r}")
        other_id = unique("a2")
        other, ack = self.proxied(v2("10.0.0.2", source_port=1003), other_id)
        self.assertIsNotNone(ack, "10.0.0.2 refused")
        self.assertEqual(ack.reason_code, 0)
        self.assert_hit_deltas(before, {"max_connections_per_address": 2})
        self.assertEqual(self.proxy_failures(), failures)  # a limit, not a bad header
        self.assert_peer(first_id, "10.0.0.1:1000")
        self.assert_peer(other_id, "10.0.0.2:1003")

        first.disconnect()
        first.close()
        deadline = time.monotonic() + 10
        while True:
            again, ack = self.proxied(v1("10.0.0.1", source_port=1004))
            if ack is not None:
                self.assertEqual(ack.reason_code, 0)
                break
            self.assertLess(time.monotonic(), deadline, "10.0.0.1 not admitted again")
            time.sleep(0.1)


class RateLimits(ProxyTest):
    LIMITS = "max_connection_rate_per_address = 3\n"

    def test_connection_rate_applies_to_the_proxied_address(self):
        """max_connection_rate_per_address = 3: 12 proxied connections from 10.9.9.9 as fast as
        possible (all sockets from 127.0.0.1): the first 3 are admitted, at most 3 per second
        more, the others refused and counted; 10.9.9.8 is admitted meanwhile."""
        rate, total = 3, 12
        before = self.all_hits()
        outcomes = []
        started = time.monotonic()
        for i in range(total):
            c, ack = self.proxied(v1("10.9.9.9", source_port=2000 + i))
            outcomes.append(ack is not None)
            c.close()
        elapsed = time.monotonic() - started
        _, ack = self.proxied(v1("10.9.9.8"))
        self.assertIsNotNone(ack, "10.9.9.8 refused")
        accepted, refused = sum(outcomes), outcomes.count(False)
        self.assertEqual(outcomes[:rate], [True] * rate, outcomes)
        self.assertLessEqual(accepted, rate + rate * elapsed + 1, (outcomes, elapsed))
        self.assertGreater(refused, 0)
        self.assert_hit_deltas(before, {"max_connection_rate_per_address": refused})


if __name__ == "__main__":
    unittest.main()
