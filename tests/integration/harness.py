"""Starts a broker on a free loopback port for one test and stops it by pid.

The broker under test is the built Starling ($STARLING_BIN). Setting STARLING_TEST_BROKER=mosquitto
runs the same tests against Debian's Mosquitto instead, which is how we check that a test
describes the spec and not our own implementation.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"broker did not listen on {port} within {timeout}s")


def against_mosquitto():
    return os.environ.get("STARLING_TEST_BROKER") == "mosquitto"


class Broker:
    """One broker process. Use as a context manager or call start()/stop()."""

    def __init__(self, config_text=None, extra_args=None, threads=2, data_dir=None):
        self.config_text = config_text
        self.extra_args = list(extra_args or [])
        self.threads = threads
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="starling-test-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "broker.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self):
        if against_mosquitto():
            conf = os.path.join(self.tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {self.port} {HOST}\nallow_anonymous true\n"
                        "max_queued_messages 10000\n")
            return ["mosquitto", "-c", conf]
        binary = os.environ.get("STARLING_BIN")
        if not binary:
            raise RuntimeError("STARLING_BIN is not set (ctest sets it)")
        cmd = [binary, "--bind", f"{HOST}:{self.port}", "--http", "off",
               "--data", self.data_dir, "--threads", str(self.threads),
               "--log-level", os.environ.get("STARLING_TEST_LOG_LEVEL", "info")]
        if self.config_text is not None:
            conf = os.path.join(self.tmp, "starling.toml")
            with open(conf, "w") as f:
                f.write(self.config_text)
            cmd += ["--config", conf]
        return cmd + self.extra_args

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the broker we started (by its pid) and returns its exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self):
        return self.stop(sig=signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
