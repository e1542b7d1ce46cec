#!/usr/bin/python3
"""Cluster benchmarks: two Starling nodes ([cluster], 2 workers each, durability batch) and
librdkafka's mock cluster (starling-kafka-mock, one broker, its own process) on loopback.
Each load runs twice in one sitting, side by side: with publishers and subscribers on node 1
("one node": nothing is forwarded) and with subscribers on node 2 ("across nodes": every
message is forwarded through Kafka). CPU is sampled per process over the bench's run.

  pairs-qos0   10 pairs, QoS 0, window 1000 per pair (the preset)
  pairs-qos1   10 pairs, QoS 1, window 1000 per pair (the preset)
  fanout-lat   10 publishers at 100 msg/s into 100 subscribers of one topic, QoS 1:
               latency of a delivery at a moderate load (p50/p99)

--linger runs everything once per producer linger.ms value (the trade-off table).

Usage: bench/cluster/run.py [--build build/release] [--loads pairs-qos0,pairs-qos1,fanout-lat]
       [--linger 5] [--fetch-wait 10]
Everything runs on 127.0.0.1 and stops by itself; only processes started here are ended.
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The Kafka bench's process helpers (mock, broker, CPU, idle wait).
_spec = importlib.util.spec_from_file_location("kafka_bench",
                                               os.path.join(ROOT, "bench", "kafka", "run.py"))
kb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kb)

LOADS = {
    "pairs-qos0": ["--preset", "pairs-qos0"],
    "pairs-qos1": ["--preset", "pairs-qos1"],
    "fanout-lat": ["fanout", "--publishers", "10", "--subscribers", "100", "--qos", "1",
                   "--payload", "64", "--rate", "100", "--warmup", "3", "--duration", "10",
                   "--drain", "5"],
}


def node_config(bootstrap, name, node, linger, fetch_wait):
    return (f'[kafka]\nbootstrap = "{bootstrap}"\n'
            f'[kafka.producer_properties]\n"linger.ms" = {linger}\n'
            f'[kafka.consumer_properties]\n"fetch.wait.max.ms" = {fetch_wait}\n'
            f'[cluster]\nname = "{name}"\nnode_id = "{node}"\n')


def run_load(args, load, n1, n2, mock, across):
    kb.wait_idle()
    sub = n2 if across else n1
    pids = [n1.proc.pid, n2.proc.pid, mock.proc.pid]
    cpu0 = [kb.cpu_seconds(p) for p in pids]
    t0 = time.time()
    cmd = [args.bench, *LOADS[load], "--port", str(n1.port), "--sub-port", str(sub.port),
           "--json", "-q"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=300).stdout
    elapsed = time.time() - t0
    cpus = [(kb.cpu_seconds(p) - c) / elapsed for p, c in zip(pids, cpu0)]
    r = json.loads(out)
    res = r
    lat = res.get("latency_us", {})
    received = res.get("received_total", 0)
    return {
        "load": load, "placement": "across nodes" if across else "one node",
        "linger_ms": args.linger_now, "msg/s": round(res.get("received_per_s", 0)),
        "lost": res.get("lost"), "p50 us": lat.get("p50"), "p99 us": lat.get("p99"),
        "node1 CPU": round(cpus[0], 2), "node2 CPU": round(cpus[1], 2),
        "mock CPU": round(cpus[2], 2),
        "node CPU us/msg": round((cpus[0] + cpus[1]) * elapsed * 1e6 / received, 2)
        if received else None,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--loads", default="pairs-qos0,pairs-qos1,fanout-lat")
    p.add_argument("--linger", default="5", help="producer linger.ms values, comma-separated")
    p.add_argument("--fetch-wait", default="10", help="consumer fetch.wait.max.ms")
    p.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    args = p.parse_args()
    build = os.path.join(ROOT, args.build)
    args.starling = os.path.join(build, "starling")
    args.bench = os.path.join(build, "starling-bench")
    tmp = tempfile.mkdtemp(prefix="starling-cluster-bench-")
    rows = []
    try:
        for linger in args.linger.split(","):
            args.linger_now = int(linger)
            mock = kb.Mock(os.path.join(build, "starling-kafka-mock"))
            nodes = []
            try:
                name = f"bench{int(time.time())}"
                for node in ("n1", "n2"):
                    d = os.path.join(tmp, f"{node}-{linger}")
                    os.makedirs(d)
                    nodes.append(kb.Starling(args.starling, node_config(
                        mock.bootstrap, name, node, linger, args.fetch_wait), d))
                n1, n2 = nodes
                for load in args.loads.split(","):
                    for across in (False, True):
                        row = run_load(args, load, n1, n2, mock, across)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                for n in nodes:
                    n.stop()
                mock.stop()
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if rows:
        cols = list(rows[0])
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
