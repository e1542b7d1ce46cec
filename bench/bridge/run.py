#!/usr/bin/python3
"""Bridge benchmarks, side by side in one sitting, everything on 127.0.0.1:

  throughput  starling-bench pairs (10 pairs, QoS 0 and 1, 10 s): publishers on the local broker,
              subscribers on the remote one, so every message crosses the local broker's bridge
              (one MQTT connection). Bridges compared:
                starling->mosquitto   Starling's [[bridges]] to Debian's Mosquitto
                starling->starling    Starling's [[bridges]] to a second Starling
                mosquitto->starling   Mosquitto's own bridge (`connection`, `topic # out Q`)
                                      to Starling
  restart     a publisher sends N QoS 1 messages at a fixed rate to the local broker while the
              remote (Starling, durable, with a persistent subscriber) is stopped for 2 s and
              started again in the middle; then everything drains and the distinct messages the
              subscriber got are counted. Starling's bridge against Mosquitto's.

Usage: bench/bridge/run.py [--build build/release] [--parts throughput,restart]
Only processes started here are ended (by pid).
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The Kafka bench's process helpers (free ports, CPU seconds), as bench/cluster uses them.
_spec = importlib.util.spec_from_file_location("kafka_bench",
                                               os.path.join(ROOT, "bench", "kafka", "run.py"))
kb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kb)
free_port = kb.free_port
cpu_seconds = kb.cpu_seconds


def wait_port(port, proc, timeout=20):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


class Process:
    def __init__(self, cmd, tmp, name, port):
        self.cmd, self.tmp, self.name, self.port = cmd, tmp, name, port
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.tmp, f"{self.name}.log"), "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def starling(args, tmp, name, config=""):
    port, http = free_port(), free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "starling.toml")
    with open(conf, "w") as f:
        f.write(config)
    p = Process([args.starling, "--config", conf, "--bind", f"127.0.0.1:{port}", "--http",
                 f"127.0.0.1:{http}", "--threads", "2", "--log-level", "warn", "--data",
                 os.path.join(d, "data")], tmp, name, port)
    p.http_port = http
    return p


def mosquitto(tmp, name, extra=""):
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)
    conf = os.path.join(d, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n"
                f"max_inflight_messages 1000\n{extra}")
    return Process(["mosquitto", "-c", conf], tmp, name, port)


def starling_bridge(remote_port, qos):
    return (f'[[bridges]]\nname = "r"\naddresses = ["127.0.0.1:{remote_port}"]\n'
            f'reconnect_min_ms = 100\nreconnect_max_ms = 500\n'
            f'[[bridges.topics]]\npattern = "#"\ndirection = "out"\nqos = {qos}\n')


def mosquitto_bridge(remote_port, qos):
    return (f"connection r\naddress 127.0.0.1:{remote_port}\ntopic # out {qos}\n"
            f"cleansession false\nrestart_timeout 1\nbridge_protocol_version mqttv311\n")


def setup(args, tmp, kind, qos, tag):
    """(local, remote) processes for a bridge kind."""
    if kind == "starling->mosquitto":
        remote = mosquitto(tmp, f"remote-{tag}")
        local = starling(args, tmp, f"local-{tag}", starling_bridge(remote.port, qos))
    elif kind == "starling->starling":
        remote = starling(args, tmp, f"remote-{tag}")
        local = starling(args, tmp, f"local-{tag}", starling_bridge(remote.port, qos))
    else:
        remote = starling(args, tmp, f"remote-{tag}")
        local = mosquitto(tmp, f"local-{tag}", mosquitto_bridge(remote.port, qos))
    time.sleep(1.5)  # the bridge connects
    return local, remote


def throughput(args, tmp):
    rows = []
    for qos in (0, 1):
        for kind in ("starling->mosquitto", "starling->starling", "mosquitto->starling"):
            local, remote = setup(args, tmp, kind, qos, f"t{qos}-{kind.replace('>', '')}")
            try:
                pids = [local.proc.pid, remote.proc.pid]
                cpu0 = [cpu_seconds(p) for p in pids]
                t0 = time.time()
                cmd = [args.bench, "pairs", "--pairs", "10", "--qos", str(qos), "--duration", "10",
                       "--warmup", "2", "--drain", "5", "--port", str(local.port), "--sub-port",
                       str(remote.port), "--json", "-q"]
                out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=300).stdout
                elapsed = time.time() - t0
                cpus = [(cpu_seconds(p) - c) / elapsed for p, c in zip(pids, cpu0)]
                r = json.loads(out)
                row = {"bridge": kind, "qos": qos, "msg/s": round(r.get("received_per_s", 0)),
                       "lost": r.get("lost"), "p50 us": r.get("latency_us", {}).get("p50"),
                       "p99 us": r.get("latency_us", {}).get("p99"),
                       "local CPU": round(cpus[0], 2), "remote CPU": round(cpus[1], 2)}
            finally:
                local.stop()
                remote.stop()
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def restart(args, tmp):
    import paho.mqtt.client as mqtt
    rows = []
    n, rate = args.count, args.rate
    for kind in ("starling->starling", "mosquitto->starling"):
        local, remote = setup(args, tmp, kind, 1, f"r-{kind.replace('>', '')}")
        got = set()
        lock = threading.Lock()

        def on_message(_c, _u, m):
            with lock:
                got.add(int(m.payload))

        sub = mqtt.Client(client_id="bench-restart-sub", clean_session=False)
        sub.on_message = on_message
        sub.on_connect = lambda c, *a: c.subscribe("load/#", qos=1)
        sub.connect("127.0.0.1", remote.port)
        sub.loop_start()
        time.sleep(0.5)
        pub = mqtt.Client(client_id="bench-restart-pub")
        pub.max_inflight_messages_set(100)
        pub.connect("127.0.0.1", local.port)
        pub.loop_start()
        try:
            start = time.time()
            restarted = False
            for i in range(n):
                pub.publish("load/x", str(i).encode(), qos=1)
                if not restarted and i >= n // 3:
                    restarted = True
                    threading.Thread(target=lambda: (remote.stop(), time.sleep(2),
                                                     remote.start())).start()
                delay = start + (i + 1) / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            deadline = time.time() + 60
            while time.time() < deadline:
                with lock:
                    if len(got) >= n:
                        break
                time.sleep(0.5)
            time.sleep(3)
            with lock:
                row = {"bridge": kind, "sent": n, "received distinct": len(got),
                       "lost": n - len(got)}
        finally:
            pub.loop_stop()
            sub.loop_stop()
            local.stop()
            remote.stop()
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows):
    if not rows:
        return
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--parts", default="throughput,restart")
    p.add_argument("--count", type=int, default=10000, help="restart: messages sent")
    p.add_argument("--rate", type=int, default=1000, help="restart: messages per second")
    args = p.parse_args()
    build = os.path.join(ROOT, args.build)
    args.starling = os.path.join(build, "starling")
    args.bench = os.path.join(build, "starling-bench")
    tmp = tempfile.mkdtemp(prefix="starling-bridge-bench-")
    os.chmod(tmp, 0o777)
    try:
        for part in args.parts.split(","):
            table(throughput(args, tmp) if part == "throughput" else restart(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
