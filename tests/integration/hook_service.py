"""A small HTTP service for the tests of [auth.http], [auth.jwt] jwks_url and [[webhooks]]:
what users run beside their broker, on a free loopback port, in a thread of the test.

- POST /auth, /acl: answered by `connect_answer(request)` / `acl_answer(request)`, functions
  the test sets, returning (status, body) where body is a dict (sent as JSON), bytes or None.
  A `delay` attribute (seconds) holds every auth/acl answer back (timeouts).
- GET /jwks: serves `jwks` (a dict).
- POST /hook: a webhook; each accepted body (a JSON array) is appended to `batches`, while
  `hook_status` is 2xx; other statuses are answered and the batch is not kept (`refused`
  counts them).
- HookService(tls=(cert, key)) serves HTTPS with that certificate.
- stop() closes the listening socket (the service is "down": connections are refused) and
  start() opens it again on the same port.

Every request is recorded in `requests` as (path, parsed JSON body or None).
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import HOST, free_port


class HookService:
    def __init__(self, tls=None):
        self.tls = tls
        self.port = free_port()
        self.lock = threading.Lock()
        self.requests = []
        self.batches = []
        self.refused = 0
        self.delay = 0.0
        self.hook_status = 200
        self.down = False
        self.jwks = {"keys": []}
        self.connect_answer = lambda req: (200, {"result": "allow"})
        self.acl_answer = lambda req: (200, {"result": "allow"})
        self.server = None
        self.thread = None
        self.start()

    # -- lifecycle
    def start(self):
        service = self
        self.down = False

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the broker's pool expects

            def log_message(self, *args):
                pass

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return None

            def _answer(self, status, body):
                data = b""
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                elif isinstance(body, bytes):
                    data = body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _down(self):
                # "Down": kept-alive connections end too, without an answer.
                if service.down:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                return service.down

            def do_GET(self):
                if self._down():
                    return
                with service.lock:
                    service.requests.append((self.path, None))
                if self.path == "/jwks":
                    self._answer(200, service.jwks)
                else:
                    self._answer(404, {"error": "no such path"})

            def do_POST(self):
                if self._down():
                    return
                body = self._body()
                with service.lock:
                    service.requests.append((self.path, body))
                if self.path in ("/auth", "/acl"):
                    if service.delay:
                        time.sleep(service.delay)
                    answer = service.connect_answer if self.path == "/auth" else service.acl_answer
                    self._answer(*answer(body))
                elif self.path == "/hook":
                    status = service.hook_status
                    with service.lock:
                        if 200 <= status < 300:
                            service.batches.append(body)
                        else:
                            service.refused += 1
                    self._answer(status, None)
                else:
                    self._answer(404, {"error": "no such path"})

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((HOST, self.port), Handler)
        if self.tls:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.down = True
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self):
        self.stop()

    # -- what the tests read
    def url(self, path):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{HOST}:{self.port}{path}"

    def count(self, path):
        with self.lock:
            return sum(1 for p, _ in self.requests if p == path)

    def bodies(self, path):
        with self.lock:
            return [b for p, b in self.requests if p == path]

    def events(self):
        """Every webhook event received, in order of arrival."""
        with self.lock:
            return [e for batch in self.batches for e in batch]
