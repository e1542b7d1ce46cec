"""A small raw MQTT client for integration tests, independent of Starling's C++ codec.

It encodes and decodes every MQTT 3.1 / 3.1.1 / 5.0 control packet (with 5.0 properties) and
talks to a broker over a plain socket, so tests can see and send exact bytes on the wire:
acks, packet ids, reason codes, and deliberately broken packets.

Properties are a dict of snake_case name -> value, e.g. {"message_expiry_interval": 10}.
"user_property" is a list of (name, value) pairs (order and repeats kept).
"subscription_identifier" decodes to a list of ints (a PUBLISH may carry several); when
encoding, an int or a list is accepted.

    c = RawClient(port, version=5)
    connack = c.connect("client-1")
    assert connack.reason_code == 0
    c.subscribe([("a/b", 1)])
    pid = c.publish("a/b", b"x", qos=1)
    ack = c.expect(PUBACK)
    c.close()

Encoders (encode_publish, ...) return bytes; build broken packets from encode_varint,
encode_string, fixed_header and friends.
"""

import socket
import struct
import time

HOST = "127.0.0.1"

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
                6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
                11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# Property id -> (name, type). Types: byte, u16, u32, varint, binary, string, pair.
PROPERTIES = {
    0x01: ("payload_format_indicator", "byte"), 0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "string"), 0x08: ("response_topic", "string"),
    0x09: ("correlation_data", "binary"), 0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"), 0x12: ("assigned_client_identifier", "string"),
    0x13: ("server_keep_alive", "u16"), 0x15: ("authentication_method", "string"),
    0x16: ("authentication_data", "binary"), 0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"), 0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "string"), 0x1C: ("server_reference", "string"),
    0x1F: ("reason_string", "string"), 0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"), 0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"), 0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"), 0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROPERTY_IDS = {name: (pid, kind) for pid, (name, kind) in PROPERTIES.items()}


class MalformedPacket(Exception):
    """The bytes received from the broker are not a valid MQTT packet."""


class ConnectionClosed(Exception):
    """The broker closed (or reset) the connection."""


# ---------------------------------------------------------------- primitive encoders

def encode_varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_binary(b):
    return struct.pack("!H", len(b)) + bytes(b)


def encode_string(s):
    """UTF-8 string with a 2-byte length; bytes are sent as given (for invalid UTF-8 tests)."""
    return encode_binary(s if isinstance(s, (bytes, bytearray)) else s.encode("utf-8"))


def fixed_header(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + encode_varint(len(body)) + body


def encode_properties(props):
    out = bytearray()
    for name, value in (props or {}).items():
        pid, kind = PROPERTY_IDS[name]
        values = value if (kind == "pair" or (name == "subscription_identifier"
                                              and isinstance(value, (list, tuple)))) else [value]
        for v in values:
            out += encode_varint(pid)
            if kind == "byte":
                out += struct.pack("!B", v)
            elif kind == "u16":
                out += struct.pack("!H", v)
            elif kind == "u32":
                out += struct.pack("!I", v)
            elif kind == "varint":
                out += encode_varint(v)
            elif kind == "binary":
                out += encode_binary(v)
            elif kind == "string":
                out += encode_string(v)
            else:  # pair
                out += encode_string(v[0]) + encode_string(v[1])
    return encode_varint(len(out)) + bytes(out)


# ---------------------------------------------------------------- packet encoders

def encode_connect(client_id, version=5, clean_start=True, keepalive=60, properties=None,
                   will=None, username=None, password=None):
    """version 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0.
    will: dict(topic, payload, qos=0, retain=False, properties=None)."""
    name = "MQIsdp" if version == 3 else "MQTT"
    flags = 0x02 if clean_start else 0
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    body = encode_string(name) + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        body += encode_properties(properties)
    body += encode_string(client_id)
    if will:
        if version == 5:
            body += encode_properties(will.get("properties"))
        body += encode_string(will["topic"]) + encode_binary(will["payload"])
    if username is not None:
        body += encode_string(username)
    if password is not None:
        body += encode_binary(password if isinstance(password, bytes) else password.encode())
    return fixed_header(CONNECT, 0, body)


def encode_publish(topic, payload=b"", qos=0, retain=False, packet_id=None, dup=False,
                   properties=None, version=5):
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = encode_string(topic)
    if qos > 0:
        body += struct.pack("!H", packet_id)
    if version == 5:
        body += encode_properties(properties)
    payload = payload.encode() if isinstance(payload, str) else bytes(payload)
    return fixed_header(PUBLISH, flags, body + payload)


def encode_ack(ptype, packet_id, reason_code=0, properties=None, version=5):
    """PUBACK, PUBREC, PUBREL or PUBCOMP. 5.0 uses the short form when there is nothing to add."""
    body = struct.pack("!H", packet_id)
    if version == 5 and (reason_code or properties):
        body += bytes([reason_code])
        if properties:
            body += encode_properties(properties)
    return fixed_header(ptype, 0x02 if ptype == PUBREL else 0, body)


def _subscription_options(opts):
    if isinstance(opts, int):
        return opts
    return (opts.get("qos", 0) | (0x04 if opts.get("no_local") else 0)
            | (0x08 if opts.get("retain_as_published") else 0)
            | (opts.get("retain_handling", 0) << 4))


def encode_subscribe(packet_id, topics, properties=None, version=5):
    """topics: list of (filter, qos) or (filter, options dict: qos, no_local,
    retain_as_published, retain_handling)."""
    body = struct.pack("!H", packet_id)
    if version == 5:
        body += encode_properties(properties)
    for topic_filter, opts in topics:
        body += encode_string(topic_filter) + bytes([_subscription_options(opts)])
    return fixed_header(SUBSCRIBE, 0x02, body)


def encode_unsubscribe(packet_id, filters, properties=None, version=5):
    body = struct.pack("!H", packet_id)
    if version == 5:
        body += encode_properties(properties)
    for f in filters:
        body += encode_string(f)
    return fixed_header(UNSUBSCRIBE, 0x02, body)


def encode_disconnect(reason_code=0, properties=None, version=5):
    if version != 5 or (reason_code == 0 and not properties):
        return fixed_header(DISCONNECT, 0, b"")
    return fixed_header(DISCONNECT, 0, bytes([reason_code]) + encode_properties(properties))


def encode_auth(reason_code=0, properties=None):
    return fixed_header(AUTH, 0, bytes([reason_code]) + encode_properties(properties))


PINGREQ_BYTES = fixed_header(PINGREQ, 0, b"")


# ---------------------------------------------------------------- decoding

class Reader:
    """Cursor over a packet body; raises MalformedPacket when data runs out."""

    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if self.left() < n:
            raise MalformedPacket(f"need {n} bytes, have {self.left()}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        value = 0
        for i in range(4):
            b = self.byte()
            value += (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return value
        raise MalformedPacket("variable byte integer longer than 4 bytes")

    def binary(self):
        return self.take(self.u16())

    def string(self):
        try:
            return self.binary().decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedPacket(f"invalid UTF-8: {e}")

    def properties(self):
        sub = Reader(self.take(self.varint()))
        props = {}
        while sub.left():
            pid = sub.varint()
            if pid not in PROPERTIES:
                raise MalformedPacket(f"unknown property id {pid:#x}")
            name, kind = PROPERTIES[pid]
            if kind == "pair":
                props.setdefault(name, []).append((sub.string(), sub.string()))
                continue
            value = {"byte": sub.byte, "u16": sub.u16, "u32": sub.u32, "varint": sub.varint,
                     "binary": sub.binary, "string": sub.string}[kind]()
            if name == "subscription_identifier":
                props.setdefault(name, []).append(value)
            elif name in props:
                raise MalformedPacket(f"property {name} repeated")
            else:
                props[name] = value
        return props


class Packet:
    """A decoded packet: .type, .flags, .fields (dict, also readable as attributes),
    .properties (dict) and .reason_code (None where the packet has none)."""

    def __init__(self, ptype, flags, **fields):
        self.type, self.flags, self.fields = ptype, flags, fields
        self.fields.setdefault("properties", {})

    def __getattr__(self, name):
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, f"type{self.type}")

    @property
    def reason_code(self):
        return self.fields.get("reason_code")

    def __repr__(self):
        shown = {k: v for k, v in self.fields.items() if v not in (None, {}, [])}
        return f"<{self.name} flags={self.flags:#x} {shown}>"


def decode_packet(first_byte, body, version=5):
    """Decodes one packet (fixed header byte + body) as the given protocol version speaks it."""
    ptype, flags = first_byte >> 4, first_byte & 0x0F
    r = Reader(body)
    v5 = version == 5
    if ptype == CONNECT:
        name, level, cflags, keepalive = r.string(), r.byte(), r.byte(), r.u16()
        props = r.properties() if level == 5 else {}
        f = dict(protocol_name=name, protocol_level=level, clean_start=bool(cflags & 2),
                 keepalive=keepalive, properties=props, client_id=r.string(), will=None,
                 username=None, password=None)
        if cflags & 0x04:
            wprops = r.properties() if level == 5 else {}
            f["will"] = dict(properties=wprops, topic=r.string(), payload=r.binary(),
                             qos=(cflags >> 3) & 3, retain=bool(cflags & 0x20))
        if cflags & 0x80:
            f["username"] = r.string()
        if cflags & 0x40:
            f["password"] = r.binary()
        p = Packet(ptype, flags, **f)
    elif ptype == CONNACK:
        ack_flags, code = r.byte(), r.byte()
        # A 2-byte CONNACK on a 5.0 connection is how a server answers a protocol level it
        # does not speak (3.1.1 style); accept it so tests can check the return code.
        p = Packet(ptype, flags, session_present=bool(ack_flags & 1), reason_code=code,
                   properties=r.properties() if v5 and r.left() else {})
    elif ptype == PUBLISH:
        qos = (flags >> 1) & 3
        if qos == 3:
            raise MalformedPacket("PUBLISH with QoS 3")
        topic = r.string()
        packet_id = r.u16() if qos else None
        props = r.properties() if v5 else {}
        p = Packet(ptype, flags, topic=topic, packet_id=packet_id, qos=qos,
                   retain=bool(flags & 1), dup=bool(flags & 8), properties=props,
                   payload=r.take(r.left()))
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        packet_id = r.u16()
        code = r.byte() if v5 and r.left() else 0
        props = r.properties() if v5 and r.left() else {}
        p = Packet(ptype, flags, packet_id=packet_id, reason_code=code, properties=props)
    elif ptype == SUBSCRIBE:
        packet_id, props, topics = r.u16(), (r.properties() if v5 else {}), []
        while r.left():
            topics.append((r.string(), r.byte()))
        p = Packet(ptype, flags, packet_id=packet_id, properties=props, topics=topics)
    elif ptype in (SUBACK, UNSUBACK):
        packet_id = r.u16()
        props = r.properties() if v5 else {}
        p = Packet(ptype, flags, packet_id=packet_id, properties=props,
                   reason_codes=list(r.take(r.left())))
    elif ptype == UNSUBSCRIBE:
        packet_id, props, filters = r.u16(), (r.properties() if v5 else {}), []
        while r.left():
            filters.append(r.string())
        p = Packet(ptype, flags, packet_id=packet_id, properties=props, filters=filters)
    elif ptype in (PINGREQ, PINGRESP):
        p = Packet(ptype, flags)
    elif ptype in (DISCONNECT, AUTH):
        code = r.byte() if v5 and r.left() else 0
        props = r.properties() if v5 and r.left() else {}
        p = Packet(ptype, flags, reason_code=code, properties=props)
    else:
        raise MalformedPacket(f"reserved packet type {ptype}")
    if r.left():
        raise MalformedPacket(f"{PACKET_NAMES[ptype]}: {r.left()} trailing bytes")
    return p


# ---------------------------------------------------------------- client

class RawClient:
    """One TCP connection to a broker. Nothing happens behind the test's back: no automatic
    acks or pings. Packet ids for subscribe/publish are allocated when not given."""

    def __init__(self, port, version=5, host=HOST, timeout=5.0, rcvbuf=None):
        self.version = version
        if rcvbuf is None:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            # A small receive buffer (set before connecting, so the window starts small): what
            # the broker sends waits in its own socket while this client does not read.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.buf = bytearray()
        self.next_id = 0
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def new_packet_id(self):
        self.next_id = self.next_id % 65535 + 1
        return self.next_id

    # -- sending
    def send_bytes(self, data):
        self.sock.sendall(bytes(data))

    def send(self, packet):
        """Sends an encoded packet (bytes from one of the encode_* functions)."""
        self.send_bytes(packet)

    def connect(self, client_id, clean_start=True, keepalive=60, properties=None, will=None,
                username=None, password=None, timeout=5.0):
        """Sends CONNECT and returns the broker's answer (normally a CONNACK)."""
        self.send(encode_connect(client_id, self.version, clean_start, keepalive, properties,
                                 will, username, password))
        return self.expect(CONNACK, timeout)

    def subscribe(self, topics, qos=0, properties=None, packet_id=None, timeout=5.0):
        """topics: a filter string, or a list of filters / (filter, qos-or-options) pairs.
        Returns the SUBACK."""
        if isinstance(topics, str):
            topics = [topics]
        topics = [t if isinstance(t, tuple) else (t, qos) for t in topics]
        packet_id = packet_id or self.new_packet_id()
        self.send(encode_subscribe(packet_id, topics, properties, self.version))
        return self.expect(SUBACK, timeout)

    def unsubscribe(self, filters, properties=None, packet_id=None, timeout=5.0):
        if isinstance(filters, str):
            filters = [filters]
        packet_id = packet_id or self.new_packet_id()
        self.send(encode_unsubscribe(packet_id, filters, properties, self.version))
        return self.expect(UNSUBACK, timeout)

    def publish(self, topic, payload=b"", qos=0, retain=False, packet_id=None, dup=False,
                properties=None):
        """Sends a PUBLISH and returns its packet id (None for QoS 0). Does not wait for acks."""
        if qos and packet_id is None:
            packet_id = self.new_packet_id()
        self.send(encode_publish(topic, payload, qos, retain, packet_id, dup, properties,
                                 self.version))
        return packet_id

    def puback(self, packet_id, reason_code=0, properties=None):
        self.send(encode_ack(PUBACK, packet_id, reason_code, properties, self.version))

    def pubrec(self, packet_id, reason_code=0, properties=None):
        self.send(encode_ack(PUBREC, packet_id, reason_code, properties, self.version))

    def pubrel(self, packet_id, reason_code=0, properties=None):
        self.send(encode_ack(PUBREL, packet_id, reason_code, properties, self.version))

    def pubcomp(self, packet_id, reason_code=0, properties=None):
        self.send(encode_ack(PUBCOMP, packet_id, reason_code, properties, self.version))

    def ping(self):
        self.send(PINGREQ_BYTES)

    def disconnect(self, reason_code=0, properties=None):
        self.send(encode_disconnect(reason_code, properties, self.version))

    # -- receiving
    def _read_more(self, deadline):
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
            self.closed = True
            raise ConnectionClosed("connection closed by the broker")
        self.buf += chunk
        return True

    def _frame(self):
        """A complete (first byte, body) from the buffer, or None if more bytes are needed."""
        length, mult = 0, 1
        for i in range(1, 5):
            if len(self.buf) <= i:
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        else:
            raise MalformedPacket("remaining length longer than 4 bytes")
        end = i + 1 + length
        if len(self.buf) < end:
            return None
        first, body = self.buf[0], bytes(self.buf[i + 1:end])
        del self.buf[:end]
        return first, body

    def recv_packet(self, timeout=5.0):
        """Next packet, or None if none arrives within timeout. Raises ConnectionClosed when
        the broker closed the connection (packets received before that are returned first)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame:
                p = decode_packet(frame[0], frame[1], self.version)
                body = len(frame[1])
                header = 2 if body < 128 else 3 if body < 16384 else 4 if body < 2097152 else 5
                p.fields["wire_size"] = header + body  # the whole packet, as sent
                return p
            if self.closed:
                raise ConnectionClosed("connection closed by the broker")
            if not self._read_more(deadline):
                return None

    def expect(self, ptype, timeout=5.0):
        """Next packet, which must be of type ptype (AssertionError otherwise)."""
        p = self.recv_packet(timeout)
        if p is None:
            raise AssertionError(f"no {PACKET_NAMES[ptype]} within {timeout}s")
        if p.type != ptype:
            raise AssertionError(f"expected {PACKET_NAMES[ptype]}, got {p!r}")
        return p

    def collect(self, timeout=1.0, quiet=None):
        """All packets arriving until timeout (or until nothing came for `quiet` seconds).
        Stops early, without raising, if the connection closes."""
        out, deadline = [], time.monotonic() + timeout
        while True:
            wait = deadline - time.monotonic()
            if quiet is not None:
                wait = min(wait, quiet)
            if wait <= 0:
                return out
            try:
                p = self.recv_packet(wait)
            except ConnectionClosed:
                return out
            if p is None:
                return out
            out.append(p)

    def expect_closed(self, timeout=5.0):
        """Waits for the broker to close the connection. Returns the DISCONNECT packet it sent
        first if there was one, True if it closed without one, False if still open after
        timeout. Other packets received meanwhile are kept in self.skipped."""
        deadline = time.monotonic() + timeout
        disconnect, self.skipped = None, []
        while True:
            try:
                p = self.recv_packet(max(0.0, deadline - time.monotonic()))
            except ConnectionClosed:
                return disconnect or True
            if p is None:
                return False
            if p.type == DISCONNECT and disconnect is None:
                disconnect = p
            else:
                self.skipped.append(p)

    def wait_closed(self, timeout=5.0):
        """Asserts that the broker closes the connection within timeout. Returns the reason
        code of the DISCONNECT it sent first, or None when it closed without one."""
        result = self.expect_closed(timeout)
        if result is False:
            raise AssertionError(f"connection still open after {timeout}s"
                                 + (f" (received {self.skipped})" if self.skipped else ""))
        return None if result is True else result.reason_code

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def check_broker_serves(port, version=5, topic="health/check", timeout=5.0):
    """Asserts that the broker still serves new clients: a fresh subscriber receives a QoS 1
    message from a fresh publisher. Use after a test has abused another connection."""
    import uuid
    tag = uuid.uuid4().hex[:8]
    with RawClient(port, version) as sub, RawClient(port, version) as pub:
        assert sub.connect(f"hc-sub-{tag}").reason_code == 0
        assert sub.subscribe([(f"{topic}/{tag}", 1)]).reason_codes == [1]
        assert pub.connect(f"hc-pub-{tag}").reason_code == 0
        pid = pub.publish(f"{topic}/{tag}", b"alive", qos=1)
        ack = pub.expect(PUBACK, timeout)
        assert ack.packet_id == pid, ack
        msg = sub.expect(PUBLISH, timeout)
        assert (msg.topic, msg.payload) == (f"{topic}/{tag}", b"alive"), msg
