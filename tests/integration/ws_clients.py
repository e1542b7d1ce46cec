"""Clients for the MQTT over WebSocket (and TLS) tests.

- run_node_roundtrip(url, ...): MQTT.js in node (node/ws_roundtrip.mjs), ws:// or wss://.
- run_browser_roundtrip(url, ...): MQTT.js in headless Chromium (node/browser_roundtrip.mjs).
- paho_ws_client(...): a paho-mqtt Client with transport="websockets" (not connected).
- MqttWsClient(port, ...): harness.MqttClient (the synchronous paho wrapper) over WebSocket.

The node scripts need `node` and tests/integration/node/node_modules (scripts/test.sh runs
`npm ci` there). Without `node` the node/browser helpers raise unittest.SkipTest; a missing
node_modules is an error, since test.sh is meant to have installed it.
"""

import json
import os
import shutil
import signal
import subprocess
import unittest

from harness import HOST, MqttClient

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
WS_PATH = "/mqtt"


def ws_url(port, tls=False, path=WS_PATH, host=HOST):
    """ws://127.0.0.1:<port>/mqtt (wss:// with tls=True)."""
    return f"{'wss' if tls else 'ws'}://{host}:{port}{path}"


def _node():
    node = shutil.which("node")
    if node is None:
        raise unittest.SkipTest("node is not installed (scripts/deps.sh test installs nodejs)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "mqtt")):
        raise RuntimeError(f"{NODE_DIR}/node_modules is missing: run scripts/test.sh, or "
                           f"`npm ci --no-audit --no-fund` in {NODE_DIR}")
    return node


def _run_node_script(script, args, timeout):
    """Runs `node <script> args...` in NODE_DIR and returns its JSON result (a dict) with
    "returncode" added (and "stderr" when the script wrote any). The script bounds itself;
    `timeout` is a backstop after which it gets SIGTERM (it then closes what it opened), and
    SIGKILL 5 s later."""
    cmd = [_node(), os.path.join(NODE_DIR, script), *args]
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    proc = subprocess.Popen(cmd, cwd=NODE_DIR, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"{script} did not finish within {timeout}s: "
                             f"stdout={out.decode(errors='replace')[-2000:]!r} "
                             f"stderr={err.decode(errors='replace')[-2000:]!r}") from None
    out = out.decode(errors="replace")
    err = err.decode(errors="replace")
    result = None
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except ValueError:
                pass
    if not isinstance(result, dict):
        raise AssertionError(f"{script} printed no JSON result (exit {proc.returncode}): "
                             f"stdout={out[-2000:]!r} stderr={err[-2000:]!r}")
    result["returncode"] = proc.returncode
    if err.strip():
        result["stderr"] = err[-4000:]
    return result


def run_node_roundtrip(url, protocol_version=5, ca=None, cert=None, key=None, insecure=False,
                       username=None, password=None, client_id=None, expect_refused=False,
                       timeout=10.0):
    """MQTT.js over ws:// or wss:// from node: connect, subscribe (QoS 1) to a unique topic,
    publish QoS 0, 1, 2 to it and receive the three. Returns the script's JSON result:

      {"ok": True, "received": [{"topic", "payload": "m0-qos0"|"m1-qos1"|"m2-qos2", "qos"}...],
       "topic", "clientId", "protocolVersion", "sessionPresent", "returncode": 0}
      {"ok": False, "error": "...", "code": <node error code or reason code>, "stage", ...}

    expect_refused=True: the CONNECT must be refused; then {"ok": True, "refused": True,
    "reasonCode": <CONNACK code, e.g. 135 (5.0) or 5 (3.1.1)>}. ca/cert/key are PEM paths;
    insecure=True skips server certificate verification. `timeout` bounds the script."""
    args = [url, "--protocol-version", str(protocol_version), "--timeout", str(timeout)]
    for flag, value in (("--ca", ca), ("--cert", cert), ("--key", key),
                        ("--username", username), ("--password", password),
                        ("--client-id", client_id)):
        if value is not None:
            args += [flag, str(value)]
    if insecure:
        args.append("--insecure")
    if expect_refused:
        args.append("--expect-refused")
    return _run_node_script("ws_roundtrip.mjs", args, timeout + 15)


def run_browser_roundtrip(url, protocol_version=5, insecure=False, timeout=20.0):
    """MQTT.js's browser bundle in headless Chromium (/usr/bin/chromium, or $CHROMIUM) over the
    browser's own WebSocket: connect, subscribe (QoS 1), publish one QoS 1 message to itself and
    receive it. Returns {"ok": True, "payload", "qos", "topic", "browserVersion", ...} or
    {"ok": False, "error", "log": [browser console lines]}; plus "returncode".
    insecure=True starts Chromium with --ignore-certificate-errors (for a wss:// test CA)."""
    args = [url, "--protocol-version", str(protocol_version), "--timeout", str(timeout)]
    if insecure:
        args.append("--insecure")
    return _run_node_script("browser_roundtrip.mjs", args, timeout + 20)


def paho_ws_client(client_id="", version=5, clean=True, path=WS_PATH, headers=None,
                   tls=False, ca=None, cert=None, key=None, insecure=False,
                   username=None, password=None):
    """A paho-mqtt Client (1.6 callback API, like harness.MqttClient) speaking MQTT over
    WebSocket on `path`; not connected: call .connect(HOST, port) (5.0: clean_start there).

    TLS (wss) is on when tls=True or any of ca/cert/key is given: ca is the CA file to verify
    the server with (None: the system's CAs), cert/key a client certificate; insecure=True
    skips verification of the server certificate and name."""
    import paho.mqtt.client as mqtt
    kwargs = {} if version == 5 else {"clean_session": clean}
    protocol = {5: mqtt.MQTTv5, 4: mqtt.MQTTv311, 3: mqtt.MQTTv31}[version]
    c = mqtt.Client(client_id=client_id, protocol=protocol, transport="websockets",
                    reconnect_on_failure=False, **kwargs)
    c.ws_set_options(path=path, headers=headers)
    if tls or ca or cert or key:
        import ssl
        c.tls_set(ca_certs=ca, certfile=cert, keyfile=key,
                  cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
        if insecure:
            c.tls_insecure_set(True)
    if username is not None:
        c.username_pw_set(username, password)
    return c


class MqttWsClient(MqttClient):
    """harness.MqttClient (connect/subscribe/publish/get/... each waiting for the broker) over
    WebSocket, optionally with TLS: MqttWsClient(port, tls=True, ca=pki.ca_cert, ...)."""

    def __init__(self, port, version=5, path=WS_PATH, headers=None, tls=False, ca=None,
                 cert=None, key=None, insecure=False, username=None, password=None, **kw):
        super().__init__(port, version=version, **kw)
        tcp = self.client
        self.client = paho_ws_client(self.client_id, version=version, clean=self.clean,
                                     path=path, headers=headers, tls=tls, ca=ca, cert=cert,
                                     key=key, insecure=insecure, username=username,
                                     password=password)
        for name in ("on_connect", "on_subscribe", "on_unsubscribe", "on_message",
                     "on_disconnect"):
            setattr(self.client, name, getattr(tcp, name))

    def drop(self, timeout=5.0):
        """Loses the connection without DISCONNECT (shuts the TCP socket under the WebSocket)."""
        if self._looping:
            ws = self.client.socket()
            sock = getattr(ws, "_socket", ws)
            if sock is not None:
                try:
                    sock.shutdown(2)  # socket.SHUT_RDWR
                except OSError:
                    pass
            self.disconnected.wait(timeout)
            self._stop_loop()
