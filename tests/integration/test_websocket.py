"""MQTT over WebSocket through real sockets: a ws listener and the HTTP port's /mqtt with paho
(transport="websockets", 5.0 and 3.1.1), MQTT.js in node (ws:// and wss:// with --ca), MQTT.js
in headless Chromium once; and, with hand-built RFC 6455 frames over a raw socket: the upgrade
handshake (404 on a wrong path, 4xx on a missing/invalid key or version, the "mqtt"
subprotocol echoed, 403 for an Origin outside ws_allowed_origins), MQTT packets split over
several frames or messages and several packets in one frame, ping/pong, masking and binary
frames required, the will of a dropped WebSocket client, and a packet above max_packet_size
closing the connection. starling_handshake_failures_total{layer="websocket"} is checked.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time
import unittest

from harness import HOST, BrokerTestCase, free_port, unique
from mqtt_raw import (CONNACK, DISCONNECT, PINGRESP, PUBACK, PUBLISH, SUBACK, ConnectionClosed,
                      decode_packet, encode_connect, encode_publish, encode_subscribe,
                      PINGREQ_BYTES)
from test_auth import assert_metric_deltas, key, metrics
from test_tls import class_pki, client_context, listener, quietly
from ws_clients import MqttWsClient, run_browser_roundtrip, run_node_roundtrip, ws_url

WS_FAILURES = key("starling_handshake_failures_total", layer="websocket")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_PACKET = 10000
RC_PACKET_TOO_LARGE = 0x95
GOOD_ORIGIN = "https://good.example"


# ---------------------------------------------------------------------------------------------
# A raw WebSocket client (RFC 6455), independent of the broker's code

def accept_for(key_text):
    return base64.b64encode(hashlib.sha1(key_text.encode() + GUID).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last one)
        self.body = body

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers} {self.body[:200]!r}>"


class RawWs:
    """One TCP (or TLS) connection speaking WebSocket by hand. Client frames are masked unless
    asked otherwise; MQTT bytes from the broker's binary frames are collected as a stream."""

    def __init__(self, port, tls_ctx=None, timeout=5.0):
        self.port = port
        s = socket.create_connection((HOST, port), timeout=timeout)
        if tls_ctx is not None:
            s = tls_ctx.wrap_socket(s, server_hostname="127.0.0.1")
        self.sock = s
        self.buf = bytearray()
        self.stream = bytearray()  # MQTT bytes from data frames
        self.control = []          # control frames received: (opcode, payload)
        self.key = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- handshake
    def request(self, path="/mqtt", key_value="auto", version="13", protocols="mqtt",
                origin=None, method="GET", upgrade="websocket", connection="Upgrade",
                extra_headers=()):
        """Sends an upgrade request (None drops a header) and returns the Response."""
        self.key = new_key() if key_value == "auto" else key_value
        headers = [("Host", f"{HOST}:{self.port}"), ("Upgrade", upgrade),
                   ("Connection", connection), ("Sec-WebSocket-Key", self.key),
                   ("Sec-WebSocket-Version", version), ("Sec-WebSocket-Protocol", protocols),
                   ("Origin", origin), *extra_headers]
        text = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers if v is not None) + "\r\n"
        self.sock.sendall(text.encode())
        return self.read_response()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise ConnectionClosed("connection closed by the broker")
        self.buf += chunk
        return True

    def read_response(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError(f"no HTTP response within {timeout}s: {bytes(self.buf)!r}")
        head, _, _ = bytes(self.buf).partition(b"\r\n\r\n")
        del self.buf[:len(head) + 4]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill(deadline):
                raise AssertionError("HTTP body incomplete")
        if length:
            body = bytes(self.buf[:length])
            del self.buf[:length]
        return Response(status, headers, body)

    def open(self, test, path="/mqtt", **kw):
        """The handshake must succeed: 101 with the right accept key."""
        r = self.request(path, **kw)
        test.assertEqual(r.status, 101, r)
        test.assertEqual(r.headers.get("sec-websocket-accept"), accept_for(self.key))
        test.assertEqual(r.headers.get("upgrade", "").lower(), "websocket")
        return r

    # -- frames
    def send_frame(self, opcode, payload=b"", fin=True, mask=True):
        payload = bytes(payload)
        head = bytearray([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mask_bit = 0x80 if mask else 0
        if n < 126:
            head.append(mask_bit | n)
        elif n < 65536:
            head.append(mask_bit | 126)
            head += struct.pack("!H", n)
        else:
            head.append(mask_bit | 127)
            head += struct.pack("!Q", n)
        if mask:
            m = os.urandom(4)
            head += m
            payload = bytes(b ^ m[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(head) + payload)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def _parse_frame(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin, opcode = bool(b[0] & 0x80), b[0] & 0x0F
        masked, n = bool(b[1] & 0x80), b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n, pos = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, pos = struct.unpack("!Q", b[2:10])[0], 10
        if masked:
            raise AssertionError("the server sent a masked frame (RFC 6455 5.1 forbids it)")
        if len(b) < pos + n:
            return None
        payload = bytes(b[pos:pos + n])
        del b[:pos + n]
        return fin, opcode, payload

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload), or None if nothing within timeout. ConnectionClosed at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse_frame()
            if f is not None:
                return f
            if not self._fill(deadline):
                return None

    def recv_packet(self, version=5, timeout=5.0):
        """The next MQTT packet from the broker's data frames (control frames are recorded in
        self.control; a close frame raises ConnectionClosed). None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._mqtt_packet(version)
            if p is not None:
                return p
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                return None
            fin, opcode, payload = f
            if opcode in (OP_BINARY, OP_CONT):
                self.stream += payload
            elif opcode == OP_CLOSE:
                self.control.append((opcode, payload))
                raise ConnectionClosed(f"close frame {close_code(payload)}")
            else:
                self.control.append((opcode, payload))
                if opcode == OP_TEXT:
                    raise AssertionError(f"the broker sent a text frame: {payload!r}")

    def _mqtt_packet(self, version):
        s = self.stream
        length, mult = 0, 1
        for i in range(1, 5):
            if len(s) <= i:
                return None
            length += (s[i] & 0x7F) * mult
            mult *= 128
            if not s[i] & 0x80:
                break
        end = i + 1 + length
        if len(s) < end:
            return None
        first, body = s[0], bytes(s[i + 1:end])
        del s[:end]
        return decode_packet(first, body, version)

    def expect(self, ptype, version=5, timeout=5.0):
        p = self.recv_packet(version, timeout)
        if p is None or p.type != ptype:
            raise AssertionError(f"expected packet type {ptype}, got {p!r}")
        return p

    def wait_closed(self, timeout=5.0):
        """Reads until the broker closes the TCP connection. Returns every frame and MQTT packet
        seen before (as ("frame", opcode, payload) / ("packet", Packet)). Fails if still open
        after timeout."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            except ConnectionClosed:
                return seen
            if f is None:
                raise AssertionError(f"connection still open after {timeout}s; seen {seen}")
            if f[1] in (OP_BINARY, OP_CONT):
                self.stream += f[2]
                while True:
                    p = self._mqtt_packet(5)
                    if p is None:
                        break
                    seen.append(("packet", p))
            else:
                seen.append(("frame", f[1], f[2]))
                if f[1] == OP_CLOSE:
                    try:  # answer the close like a client does, then wait for the TCP close
                        self.send_frame(OP_CLOSE, f[2][:2])
                    except OSError:
                        pass


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def wait_http_closed(ws, timeout=5.0):
    """After an HTTP refusal: the broker closes the connection (EOF) within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not ws._fill(deadline):
                raise AssertionError(f"connection still open {timeout}s after the refusal")
        except ConnectionClosed:
            return


# ---------------------------------------------------------------------------------------------

class WebSocket(BrokerTestCase):
    """One broker: a plain listener, "ws" (/mqtt), "wscustom" (ws_path /custom/mqtt),
    "wsorigin" (ws_allowed_origins), "wss" (ws with TLS), and the HTTP port (its /mqtt);
    [mqtt] max_packet_size = 10000."""

    @classmethod
    def setUpClass(cls):
        p = class_pki(cls)
        cls.ws_port, cls.custom_port, cls.origin_port, cls.wss_port = (
            free_port(), free_port(), free_port(), free_port())
        cls.broker_config = (
            listener("ws", cls.ws_port, protocol="ws")
            + listener("wscustom", cls.custom_port, protocol="ws", ws_path="/custom/mqtt")
            + listener("wsorigin", cls.origin_port, protocol="ws",
                       ws_allowed_origins=[GOOD_ORIGIN, "http://localhost:8080"])
            + listener("wss", cls.wss_port, protocol="ws", tls_cert=p.server_cert,
                       tls_key=p.server_key)
            + f"[mqtt]\nmax_packet_size = {MAX_PACKET}\n")
        cls.broker_args = {"http": True, "listener_ports": [cls.ws_port, cls.custom_port,
                                                            cls.origin_port, cls.wss_port]}
        super().setUpClass()

    def raw(self, port=None, tls=False):
        ws = RawWs(port or self.ws_port,
                   tls_ctx=client_context(self.pki.ca_cert) if tls else None)
        self.addCleanup(ws.close)
        return ws

    def ws_connected(self, port=None, version=5, client_id=None, **connect_kw):
        ws = self.raw(port)
        ws.open(self)
        ws.send_binary(encode_connect(client_id or unique("rawws"), version, **connect_kw))
        ack = ws.expect(CONNACK, version)
        self.assertEqual(ack.reason_code, 0, ack)
        return ws

    def node_ok(self, result):
        self.assertTrue(result.get("ok"), result)
        self.assertEqual([(m["payload"], m["qos"]) for m in result["received"]],
                         [("m0-qos0", 0), ("m1-qos1", 1), ("m2-qos2", 1)])  # subscribed at QoS 1

    # -- real clients

    def test_paho_websocket_round_trip(self):
        """paho over WebSocket, 5.0 and 3.1.1, on the ws listener and on the HTTP port's
        /mqtt: subscribe QoS 2, publish QoS 1 and 2, receive both."""
        for port_name in ("ws_port", "http_port"):
            for version in (5, 4):
                with self.subTest(port=port_name, version=version):
                    c = MqttWsClient(getattr(self, port_name), version=version)
                    self.addCleanup(c.close)
                    c.connect()
                    topic = unique("ws/paho")
                    self.assertEqual(c.subscribe(topic, qos=2), [2])
                    c.publish(topic, b"one", qos=1)
                    c.publish(topic, b"two", qos=2)
                    got = sorted((m.payload, m.qos) for m in c.collect(2))
                    self.assertEqual(got, [(b"one", 1), (b"two", 2)])

    def test_websocket_and_tcp_clients_talk(self):
        """A WebSocket subscriber gets a TCP client's publish, and the other way round."""
        ws = MqttWsClient(self.ws_port)
        self.addCleanup(ws.close)
        ws.connect()
        tcp = self.paho_client(4)
        t1, t2 = unique("ws/in"), unique("ws/out")
        ws.subscribe(t1, qos=1)
        tcp.subscribe(t2, qos=1)
        tcp.publish(t1, b"tcp to ws", qos=1)
        ws.publish(t2, b"ws to tcp", qos=1)
        self.assertEqual(ws.get().payload, b"tcp to ws")
        self.assertEqual(tcp.get().payload, b"ws to tcp")

    def test_paho_wss_round_trip(self):
        """paho over wss:// (ws listener with TLS) verifying the server with the test CA."""
        c = quietly(MqttWsClient, self.wss_port, ca=self.pki.ca_cert)
        self.addCleanup(c.close)
        c.connect()
        topic = unique("wss/paho")
        self.assertEqual(c.subscribe(topic, qos=1), [1])
        c.publish(topic, b"secure", qos=1)
        self.assertEqual(c.get().payload, b"secure")

    def test_mqttjs_on_ws_listener(self):
        """MQTT.js (node) on the ws listener, 5.0 and 3.1.1: QoS 0/1/2 come back."""
        for version in (5, 4):
            with self.subTest(version=version):
                self.node_ok(run_node_roundtrip(ws_url(self.ws_port), protocol_version=version))

    def test_mqttjs_on_http_port(self):
        """MQTT.js on the HTTP port's /mqtt."""
        self.node_ok(run_node_roundtrip(ws_url(self.http_port)))

    def test_mqttjs_on_custom_path(self):
        """ws_path = "/custom/mqtt": MQTT.js connects there."""
        self.node_ok(run_node_roundtrip(ws_url(self.custom_port, path="/custom/mqtt"),
                                        protocol_version=4))

    def test_mqttjs_wss_with_ca(self):
        """MQTT.js over wss:// with --ca (the server certificate verified), and refusing the
        server without it (the test CA is not trusted by default)."""
        self.node_ok(run_node_roundtrip(ws_url(self.wss_port, tls=True), ca=self.pki.ca_cert))
        result = run_node_roundtrip(ws_url(self.wss_port, tls=True), timeout=5)
        self.assertFalse(result.get("ok"), result)

    def test_browser_on_http_port(self):
        """MQTT.js's browser bundle in headless Chromium on the HTTP port's /mqtt."""
        if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
            self.skipTest("chromium is not installed")
        result = run_browser_roundtrip(ws_url(self.http_port))
        self.assertTrue(result.get("ok"), result)
        self.assertEqual(result["qos"], 1)
        self.assertTrue(result["payload"].startswith("hello from"), result)

    # -- the handshake

    def test_wrong_path_is_404_and_closed(self):
        """A path other than the listener's: 404 (JSON error body), then the broker closes;
        on the ws listener, the custom-path listener (/mqtt there is wrong) and the HTTP
        port. Counted as WebSocket handshake failures."""
        before = metrics(self.http_port)
        for port, path in ((self.ws_port, "/nope"), (self.custom_port, "/mqtt"),
                           (self.http_port, "/mqtt/x")):
            with self.subTest(port=port, path=path):
                ws = self.raw(port)
                r = ws.request(path)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(json.loads(r.body)["error"], "not_found")
                wait_http_closed(ws)
        assert_metric_deltas(self, self.http_port, before, {WS_FAILURES: 3})

    def test_bad_upgrade_requests_are_4xx(self):
        """Missing Sec-WebSocket-Key, a key that is not base64 of 16 bytes, version 8 or none
        (426 with Sec-WebSocket-Version: 13), no Upgrade header, a POST: each answered 4xx and
        closed, on the ws listener and on the HTTP port."""
        short_key = base64.b64encode(b"0123456789abcde").decode()  # 15 bytes
        cases = [("missing key", dict(key_value=None), 400),
                 ("key not base64", dict(key_value="!!not base64!!"), 400),
                 ("key of 15 bytes", dict(key_value=short_key), 400),
                 ("version 8", dict(version="8"), 426),
                 ("no version", dict(version=None), 426),
                 ("POST", dict(method="POST"), 405)]
        before = metrics(self.http_port)
        n = 0
        for port in (self.ws_port, self.http_port):
            for name, kw, status in cases:
                with self.subTest(port=port, case=name):
                    ws = self.raw(port)
                    r = ws.request(**kw)
                    n += 1
                    self.assertEqual(r.status, status, r)
                    if status == 426:
                        self.assertEqual(r.headers.get("sec-websocket-version"), "13", r)
                    wait_http_closed(ws)
            with self.subTest(port=port, case="no Upgrade header"):
                ws = self.raw(port)
                r = ws.request(upgrade=None, connection=None)
                self.assertGreaterEqual(r.status, 400, r)
                self.assertLess(r.status, 500, r)
                if port == self.ws_port:
                    n += 1
                    wait_http_closed(ws)
        assert_metric_deltas(self, self.http_port, before, {WS_FAILURES: n})

    def test_subprotocol_is_echoed(self):
        """The client's "mqtt" comes back in Sec-WebSocket-Protocol (also when listed after
        another, and "mqttv3.1" for old clients); no header when none was offered; only an
        unknown subprotocol is refused with 4xx. Sec-WebSocket-Accept is RFC 6455's."""
        for offered, answer in (("mqtt", "mqtt"), ("foo, mqtt", "mqtt"),
                                ("mqttv3.1", "mqttv3.1"), (None, None)):
            for port in (self.ws_port, self.http_port):
                with self.subTest(offered=offered, port=port):
                    ws = self.raw(port)
                    r = ws.open(self, protocols=offered)
                    self.assertEqual(r.headers.get("sec-websocket-protocol"), answer, r)
                    ws.send_binary(encode_connect(unique("sp"), 4))
                    self.assertEqual(ws.expect(CONNACK, 4).reason_code, 0)
        ws = self.raw()
        r = ws.request(protocols="chat, superchat")
        self.assertGreaterEqual(r.status, 400, r)
        self.assertLess(r.status, 500, r)

    def test_allowed_origins(self):
        """ws_allowed_origins: a foreign Origin gets 403 (counted); a listed one (compared
        case-insensitively) and a request without Origin get 101; other listeners take any
        Origin."""
        before = metrics(self.http_port)
        ws = self.raw(self.origin_port)
        r = ws.request(origin="https://evil.example")
        self.assertEqual(r.status, 403, r)
        wait_http_closed(ws)
        assert_metric_deltas(self, self.http_port, before, {WS_FAILURES: 1})
        for origin in (GOOD_ORIGIN, "HTTPS://GOOD.example", "http://localhost:8080", None):
            with self.subTest(origin=origin):
                ws = self.raw(self.origin_port)
                ws.open(self, origin=origin)
                ws.send_binary(encode_connect(unique("origin"), 5))
                self.assertEqual(ws.expect(CONNACK).reason_code, 0)
        ws = self.raw(self.ws_port)
        ws.open(self, origin="https://evil.example")

    def test_raw_wss_handshake(self):
        """The upgrade and MQTT over a TLS connection on the wss listener."""
        ws = self.raw(self.wss_port, tls=True)
        ws.open(self)
        ws.send_binary(encode_connect(unique("wss"), 5))
        self.assertEqual(ws.expect(CONNACK).reason_code, 0)

    # -- framing

    def test_packet_split_over_several_messages(self):
        """CONNECT in three separate binary messages, then SUBSCRIBE split across two messages
        that also carry a PINGREQ: CONNACK, SUBACK and PINGRESP come (MQTT packets need not
        align with WebSocket messages)."""
        ws = self.raw()
        ws.open(self)
        connect = encode_connect(unique("split"), 5)
        for part in (connect[:1], connect[1:7], connect[7:]):
            ws.send_binary(part)
        self.assertEqual(ws.expect(CONNACK).reason_code, 0)
        sub = encode_subscribe(1, [("split/t", 1)])
        ws.send_binary(sub[:3])
        ws.send_binary(sub[3:] + PINGREQ_BYTES)
        self.assertEqual(ws.expect(SUBACK).reason_codes, [1])
        ws.expect(PINGRESP)

    def test_packet_split_over_fragments_with_a_ping_inside(self):
        """CONNECT as one fragmented message (binary FIN=0, continuation, continuation FIN=1)
        with a ping control frame between the fragments: the pong comes back with the ping's
        payload and the CONNECT is answered."""
        ws = self.raw()
        ws.open(self)
        connect = encode_connect(unique("frag"), 4)
        ws.send_frame(OP_BINARY, connect[:5], fin=False)
        ws.send_frame(OP_PING, b"mid-message")
        ws.send_frame(OP_CONT, connect[5:12], fin=False)
        ws.send_frame(OP_CONT, connect[12:], fin=True)
        self.assertEqual(ws.expect(CONNACK, 4).reason_code, 0)
        self.assertIn((OP_PONG, b"mid-message"), ws.control)

    def test_several_packets_in_one_frame(self):
        """CONNECT, SUBSCRIBE, PUBLISH (QoS 1, to the subscribed topic) and PINGREQ in one
        frame: CONNACK first, then SUBACK, PUBACK, the PUBLISH and PINGRESP."""
        ws = self.raw()
        ws.open(self)
        topic = unique("ws/multi")
        ws.send_binary(encode_connect(unique("multi"), 5) + encode_subscribe(7, [(topic, 1)])
                       + encode_publish(topic, b"in one frame", qos=1, packet_id=8)
                       + PINGREQ_BYTES)
        got = [ws.recv_packet() for _ in range(5)]
        self.assertNotIn(None, got, got)
        self.assertEqual(got[0].type, CONNACK)
        self.assertEqual(got[0].reason_code, 0)
        by_type = {p.type: p for p in got[1:]}
        self.assertEqual(sorted(by_type), sorted([SUBACK, PUBACK, PUBLISH, PINGRESP]), got)
        self.assertEqual((by_type[SUBACK].packet_id, by_type[SUBACK].reason_codes), (7, [1]))
        self.assertEqual(by_type[PUBACK].packet_id, 8)
        self.assertEqual((by_type[PUBLISH].topic, by_type[PUBLISH].payload),
                         (topic, b"in one frame"))
        self.assertLess(got.index(by_type[SUBACK]), got.index(by_type[PUBLISH]))

    def test_ping_gets_pong(self):
        """A ping (with and without payload) gets a pong with the same payload; the MQTT
        connection carries on."""
        ws = self.ws_connected()
        for payload in (b"are you there?", b""):
            ws.send_frame(OP_PING, payload)
            f = ws.recv_frame()
            self.assertIsNotNone(f)
            self.assertEqual((f[1], f[2]), (OP_PONG, payload))
        ws.send_binary(PINGREQ_BYTES)
        ws.expect(PINGRESP)

    def test_unmasked_client_frame_closes(self):
        """A client frame without a mask (RFC 6455 5.1): the broker closes, no CONNACK."""
        ws = self.raw()
        ws.open(self)
        ws.send_frame(OP_BINARY, encode_connect(unique("unmasked"), 5), mask=False)
        seen = ws.wait_closed()
        self.assertFalse([s for s in seen if s[0] == "packet"], seen)

    def test_text_frame_closes(self):
        """MQTT must travel in binary frames; a CONNECT in a text frame makes the broker close
        the connection without answering it [MQTT-6.0.0-1]."""
        ws = self.raw()
        ws.open(self)
        ws.send_frame(OP_TEXT, encode_connect("textframe", 4))
        seen = ws.wait_closed()
        self.assertFalse([s for s in seen if s[0] == "packet"], seen)

    def test_close_frame_is_answered(self):
        """A close frame (1000) is answered with a close frame and the connection ends."""
        ws = self.ws_connected()
        ws.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        seen = ws.wait_closed()
        closes = [s for s in seen if s[0] == "frame" and s[1] == OP_CLOSE]
        self.assertEqual(len(closes), 1, seen)
        self.assertEqual(close_code(closes[0][2]), 1000)

    # -- MQTT semantics over WebSocket

    def test_will_published_when_a_websocket_client_drops(self):
        """paho over WebSocket with a will, its TCP connection cut: a TCP subscriber gets the
        will; a raw WebSocket client sending a close frame without DISCONNECT too."""
        topic = unique("ws/will")
        sub = self.paho_client()
        self.assertEqual(sub.subscribe(topic, qos=1), [1])
        c = MqttWsClient(self.ws_port)
        self.addCleanup(c.close)
        c.will_set(topic, b"ws client gone", qos=1)
        c.connect()
        c.drop()
        m = sub.get(timeout=10)
        self.assertEqual((m.topic, m.payload), (topic, b"ws client gone"))

        ws = self.ws_connected(will={"topic": topic, "payload": b"closed without DISCONNECT",
                                     "qos": 1})
        ws.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        ws.wait_closed()
        m = sub.get(timeout=10)
        self.assertEqual((m.topic, m.payload), (topic, b"closed without DISCONNECT"))

    def test_packet_above_max_packet_size_closes(self):
        """max_packet_size = 10000 is announced; a 12000-byte PUBLISH in one message, and one
        spread over many small messages, each end the connection (5.0: DISCONNECT 0x95 first)
        and are not delivered; a 3.1.1 client is closed too; the same on the HTTP port."""
        topic = unique("ws/big")
        watcher = self.raw_client(connect=False)
        watcher.connect(unique("watch"))
        watcher.subscribe([(topic, 0)])
        self.assertGreater(len(encode_publish(topic, b"x" * 12000, qos=0)), MAX_PACKET)
        for how in ("one message", "many messages", "3.1.1", "HTTP port"):
            with self.subTest(how=how):
                version = 4 if how == "3.1.1" else 5
                ws = self.raw(self.http_port if how == "HTTP port" else self.ws_port)
                ws.open(self)
                ws.send_binary(encode_connect(unique("big"), version))
                ack = ws.expect(CONNACK, version)
                if version == 5:
                    self.assertEqual(ack.properties.get("maximum_packet_size"), MAX_PACKET)
                packet = encode_publish(topic, b"x" * 12000, qos=0, version=version)
                try:
                    if how == "many messages":
                        for i in range(0, len(packet), 1000):
                            ws.send_binary(packet[i:i + 1000])
                    else:
                        ws.send_binary(packet)
                except OSError:
                    pass  # closed while we were still sending
                seen = ws.wait_closed()
                packets = [s[1] for s in seen if s[0] == "packet"]
                if version == 5:
                    self.assertEqual([(p.type, p.reason_code) for p in packets],
                                     [(DISCONNECT, RC_PACKET_TOO_LARGE)], seen)
                else:
                    self.assertEqual(packets, [], seen)
        # Nothing reached the subscriber: a later message is the first it gets.
        marker = self.raw_client(client_id=unique("marker"))
        marker.publish(topic, b"marker", qos=0)
        m = watcher.expect(PUBLISH)
        self.assertEqual(m.payload, b"marker")

    def test_message_just_under_the_limit_passes(self):
        """A PUBLISH of exactly max_packet_size bytes over WebSocket is delivered."""
        topic = unique("ws/edge")
        ws = self.ws_connected()
        ws.send_binary(encode_subscribe(1, [(topic, 0)]))
        self.assertEqual(ws.expect(SUBACK).reason_codes, [0])
        overhead = len(encode_publish(topic, b"", qos=0))
        payload = b"y" * (MAX_PACKET - overhead - 2)  # remaining length takes 2 bytes more
        packet = encode_publish(topic, payload, qos=0)
        while len(packet) < MAX_PACKET:
            payload += b"y"
            packet = encode_publish(topic, payload, qos=0)
        self.assertEqual(len(packet), MAX_PACKET)
        ws.send_binary(packet)
        m = ws.expect(PUBLISH)
        self.assertEqual(len(m.payload), len(payload))


if __name__ == "__main__":
    unittest.main()
