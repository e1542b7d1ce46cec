#!/usr/bin/python3
"""Kafka bridge benchmarks against librdkafka's mock cluster (starling-kafka-mock, one broker,
in its own process so its CPU is not the broker's). Each scenario starts a fresh Starling
(2 workers, durability batch) and prints one table row; side by side in one run:

  mqtt     starling-bench pairs (10 pairs, QoS 1, 64-byte payloads) with no Kafka rule, an
           async rule and a sync rule on bench/#: MQTT msg/s, Kafka records/s, broker CPU
  http     wrk POST /api/v1/publish (2 threads, 64 connections) with no rule, async, sync
  consume  N records preloaded (kcat) into a 20-partition topic, consumed by a
           [[kafka.consume]] rule (QoS 0) with no MQTT subscriber and with one (mosquitto_sub)

Usage: bench/kafka/run.py [--build build/release] [--scenarios mqtt,http,consume]
       [--duration 10] [--records 1000000]
Everything runs on 127.0.0.1 and stops by itself; only processes started here are ended.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def machine_busy():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / HZ


def wait_idle(limit=600):
    """Until the machine has been at least 90% idle for 3 s in a row (other benchmarks would
    skew the figures)."""
    quiet = 0
    for _ in range(limit):
        with open("/proc/stat") as f:
            a = [int(x) for x in f.readline().split()[1:]]
        time.sleep(1)
        with open("/proc/stat") as f:
            b = [int(x) for x in f.readline().split()[1:]]
        busy = sum(b[i] - a[i] for i in (0, 1, 2, 5, 6))
        idle = b[3] - a[3]
        quiet = quiet + 1 if idle * 10 >= (busy + idle) * 9 else 0
        if quiet >= 3:
            return
    print("warning: the machine did not become idle; figures may be low", file=sys.stderr)


class Mock:
    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "--brokers", "1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line[0] == "bootstrap", line
        self.bootstrap = line[1]

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok" and not answer.endswith("TOPIC_ALREADY_EXISTS"):
            raise RuntimeError(f"mock: {line}: {answer}")

    def stop(self):
        try:
            self.command("quit")
        except (RuntimeError, BrokenPipeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Starling:
    def __init__(self, binary, config_text, tmp):
        self.port = free_port()
        self.http_port = free_port()
        conf = os.path.join(tmp, "starling.toml")
        with open(conf, "w") as f:
            f.write(config_text)
        self.data = tempfile.mkdtemp(dir=tmp)
        self.log = open(os.path.join(tmp, f"starling-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(
            [binary, "--config", conf, "--bind", f"127.0.0.1:{self.port}", "--http",
             f"127.0.0.1:{self.http_port}", "--threads", "2", "--log-level", "warn", "--data",
             self.data], stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, LD_PRELOAD=os.environ.get("STARLING_LD_PRELOAD", "")))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz",
                                            timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("starling did not become ready")

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                    timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def config(bootstrap, rules):
    return (f'[kafka]\nbootstrap = "{bootstrap}"\n' if rules else "") + rules


def produce_rule(mode):
    return f'[[kafka.produce]]\nfilter = "bench/#"\ntopic = "bench"\nkey = ""\nmode = "{mode}"\n'


def window(server, pid_list, seconds, measure):
    """Samples counters and CPU over the measurement window."""
    before = {n: server.metric(n) for n in measure}
    cpu0 = [cpu_seconds(p) for p in pid_list]
    busy0, t0 = machine_busy(), time.time()
    time.sleep(seconds)
    after = {n: server.metric(n) for n in measure}
    cpu1 = [cpu_seconds(p) for p in pid_list]
    busy1, t1 = machine_busy(), time.time()
    elapsed = t1 - t0
    rates = {n: (after[n] - before[n]) / elapsed for n in measure}
    cpus = [(b - a) / elapsed for a, b in zip(cpu0, cpu1)]
    other = (busy1 - busy0) / elapsed - sum(cpus)
    return rates, cpus, other


def scenario_mqtt(args, mock, tmp):
    rows = []
    mock.command("topic bench 20")
    for mode in args.modes.split(","):
        rules = "" if mode == "none" else produce_rule(mode)
        wait_idle()
        s = Starling(args.starling, config(mock.bootstrap, rules), tmp)
        try:
            bench = subprocess.Popen(
                [args.bench, "--port", str(s.port), "--qos", "1", "--warmup", "3", "--duration",
                 str(args.duration + 2), "--drain", "5", "--json", "-q", "pairs", "--pairs",
                 "10"], stdout=subprocess.PIPE, text=True)
            time.sleep(4)  # connect + warm-up
            rates, cpus, other = window(
                s, [s.proc.pid, mock.proc.pid, bench.pid], args.duration,
                ["starling_messages_sent_total", "starling_kafka_produced_total"])
            out, _ = bench.communicate(timeout=args.duration + 60)
            result = json.loads(out)
            rows.append({
                "scenario": f"MQTT QoS 1, 10 pairs, rule {mode}",
                "mqtt msg/s": rates["starling_messages_sent_total"],
                "kafka records/s": rates["starling_kafka_produced_total"],
                "lost": result.get("lost", result.get("summary", {}).get("lost")),
                "broker CPU": cpus[0], "mock Kafka CPU": cpus[1], "bench CPU": cpus[2],
                "other": other})
        finally:
            s.stop()
    return rows


def scenario_http(args, mock, tmp):
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk); skipping http", file=sys.stderr)
        return []
    rows = []
    mock.command("topic bench 20")
    for mode in args.modes.split(","):
        rules = "" if mode == "none" else produce_rule(mode)
        wait_idle()
        s = Starling(args.starling, config(mock.bootstrap, rules), tmp)
        try:
            env = dict(os.environ, TOPIC="bench/http", QOS="1", RETAIN="false")
            wrk = subprocess.Popen(
                ["wrk", "-t2", "-c64", f"-d{int(args.duration) + 2}s", "--latency", "-s",
                 os.path.join(ROOT, "bench/http/publish.lua"), f"http://127.0.0.1:{s.http_port}"],
                stdout=subprocess.PIPE, text=True, env=env)
            time.sleep(1)
            rates, cpus, other = window(
                s, [s.proc.pid, mock.proc.pid, wrk.pid], args.duration,
                ["starling_http_requests_total", "starling_kafka_produced_total"])
            out, _ = wrk.communicate(timeout=args.duration + 60)
            p99 = next((l.split()[1] for l in out.splitlines() if l.strip().startswith("99%")),
                       "?")
            non2xx = next((l.split(":")[1].strip() for l in out.splitlines()
                           if l.startswith("non-2xx")), "?")
            rows.append({
                "scenario": f"HTTP POST QoS 1, wrk -t2 -c64, rule {mode}",
                "requests/s": rates["starling_http_requests_total"],
                "kafka records/s": rates["starling_kafka_produced_total"],
                "p99": p99, "non-2xx": non2xx,
                "broker CPU": cpus[0], "mock Kafka CPU": cpus[1], "wrk CPU": cpus[2],
                "other": other})
        finally:
            s.stop()
    return rows


def scenario_consume(args, mock, tmp):
    rows = []
    for subscriber in (False, True):
        topic = f"in{int(subscriber)}"
        mock.command(f"topic {topic} 20")
        # Preload: kcat produces the records (null keys: spread over the 20 partitions), in
        # chunks: kcat 1.7.1 silently lost records of one large -l file (its local queue
        # filled); the count below checks the preload.
        data = os.path.join(tmp, "records")
        chunk = 100000
        for start in range(0, args.records, chunk):
            with open(data, "w") as f:
                for i in range(start, min(start + chunk, args.records)):
                    f.write(f"{i:010d}-0123456789012345678901234567890123456789012345678901\n")
            subprocess.run(["kcat", "-b", mock.bootstrap, "-P", "-t", topic, "-l", data],
                           check=True)
        # What the topic holds: end minus start offsets. (kcat -C -e stops early on some
        # partitions; and librdkafka 2.0.2's mock keeps a bounded log per partition, dropping
        # the oldest records of a large preload, so the start offsets move.)
        def offsets(when):
            query = []
            for p in range(20):
                query += ["-t", f"{topic}:{p}:{when}"]
            out = subprocess.run(["kcat", "-b", mock.bootstrap, "-Q"] + query, check=True,
                                 capture_output=True, text=True).stdout
            return sum(int(n) for n in re.findall(r"offset (\d+)", out))
        available = offsets(-1) - offsets(-2)
        if available <= 0:
            raise RuntimeError("the preload left nothing to consume")
        rules = (f'[[kafka.consume]]\ntopics = ["{topic}"]\ngroup = "bench-{topic}"\n'
                 f'mqtt_topic = "k/{{partition}}"\nqos = 0\noffset_reset = "earliest"\n')
        wait_idle()
        s = Starling(args.starling, config(mock.bootstrap, rules), tmp)
        sub = None
        try:
            if subscriber:
                sub = subprocess.Popen(["mosquitto_sub", "-p", str(s.port), "-t", "k/#", "-q",
                                        "0"], stdout=subprocess.DEVNULL)
            pids = [s.proc.pid, mock.proc.pid] + ([sub.pid] if sub else [])
            cpu0 = [cpu_seconds(p) for p in pids]
            busy0 = machine_busy()
            first = last = None
            deadline = time.time() + 300
            while time.time() < deadline:
                n = s.metric("starling_kafka_consumed_total")
                now = time.time()
                if n > 0 and first is None:
                    first = (now, n)
                if n >= available:
                    last = (now, n)
                    break
                if int(now * 20) % 100 == 0:
                    print(f"  consumed {n:.0f}", file=sys.stderr, flush=True)
                time.sleep(0.05)
            cpu1 = [cpu_seconds(p) for p in pids]
            busy1 = machine_busy()
            sent = s.metric("starling_messages_sent_total")
            if not last:
                raise RuntimeError(f"the consumer read {s.metric('starling_kafka_consumed_total')}"
                                   f" of {available} records within 300 s; log: {s.log.name}")
            elapsed = last[0] - first[0]
            rate = (last[1] - first[1]) / elapsed
            total = last[0] - first[0]
            cpus = [(b - a) / total for a, b in zip(cpu0, cpu1)]
            rows.append({
                "scenario": f"Kafka -> MQTT, 20 partitions, {available:.0f} records, "
                            f"{'one subscriber' if subscriber else 'no subscriber'}",
                "kafka records/s": rate, "mqtt delivered": sent,
                "broker CPU": cpus[0], "mock Kafka CPU": cpus[1],
                "subscriber CPU": cpus[2] if sub else 0.0,
                "other": (busy1 - busy0) / total - sum(cpus)})
        finally:
            if sub:
                sub.terminate()
                sub.wait()
            s.stop()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--scenarios", default="mqtt,http,consume")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--records", type=int, default=1000000)
    p.add_argument("--modes", default="none,async,sync", help="produce modes (mqtt, http)")
    p.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    args = p.parse_args()
    build = os.path.join(ROOT, args.build)
    args.starling = os.path.join(build, "starling")
    args.bench = os.path.join(build, "starling-bench")
    mock_bin = os.path.join(build, "starling-kafka-mock")
    tmp = tempfile.mkdtemp(prefix="starling-kafka-bench-")
    mock = Mock(mock_bin)
    try:
        for name in args.scenarios.split(","):
            for r in {"mqtt": scenario_mqtt, "http": scenario_http,
                      "consume": scenario_consume}[name](args, mock, tmp):
                print(json.dumps(r), flush=True)
    finally:
        mock.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
