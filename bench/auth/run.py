#!/usr/bin/python3
"""Benchmarks of [auth.http] and [[webhooks]], side by side in one sitting, on 127.0.0.1:

  connect   starling-bench connections (N connections, 256 handshakes in flight), each CONNECT
            with a user name and password, against one Starling per way of checking them:
              password-file  [auth] password_file (starling passwd, $7$ PBKDF2-SHA512, 101
                             iterations as mosquitto_passwd)
              http           [auth.http] connect_url, cache_ttl_s = 0: one request per CONNECT
              http-cached    the same with the cache: the run is made twice with the same client
                             ids, the second one measured (every answer from the cache)
            The auth service is HAProxy answering {"result":"allow"} itself (http-request
            return): a service that costs next to nothing, so the figure is the broker's.
  publish   starling-bench pairs (10 pairs, QoS 0, 10 s) with a [[webhooks]] on
            message.delivered (batch_max 1000) to the same HAProxy, against the same broker
            without webhooks.

Usage: bench/auth/run.py [--build build/release] [--connections 10000] [--parts connect,publish]
                        [--rounds 2]
Only processes started here are ended (by pid).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_spec = importlib.util.spec_from_file_location("bridge_bench",
                                               os.path.join(ROOT, "bench", "bridge", "run.py"))
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)


def auth_service(tmp):
    """HAProxy as the auth service and webhook receiver."""
    port = bb.free_port()
    conf = os.path.join(tmp, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(f"""global
  maxconn 4000
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend auth
  bind 127.0.0.1:{port}
  http-request return status 200 content-type application/json string "{{\\"result\\":\\"allow\\"}}"
""")
    return bb.Process(["haproxy", "-f", conf], tmp, "haproxy", port)


def connect_run(args, port, prefix, pid):
    cmd = [args.bench, "connections", "--port", str(port), "--connections", str(args.connections),
           "--max-connecting", "256", "--warmup", "0", "--duration", "1", "--drain", "1",
           "--connect-timeout", "120", "--username", "bench", "--password", "bench-pw",
           "--client-id-prefix", prefix, "--broker-pid", str(pid), "--json", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd}: {out.returncode}\n{out.stderr[-2000:]}{out.stdout[-2000:]}")
    report = json.loads(out.stdout)
    return report["connect"]["per_s"], report["connect"].get("connack_latency_us", {})


def connect(args, tmp):
    service = auth_service(tmp)
    passwd = os.path.join(tmp, "passwd")
    subprocess.run([args.starling, "passwd", "-c", "-b", passwd, "bench", "bench-pw"], check=True)
    url = f"http://127.0.0.1:{service.port}/auth"
    ways = [
        ("password-file", f'[auth]\npassword_file = "{passwd}"\n', False),
        ("http", f'[auth.http]\nconnect_url = "{url}"\ncache_ttl_s = 0\n', False),
        ("http-cached", f'[auth.http]\nconnect_url = "{url}"\ncache_ttl_s = 600\n', True),
    ]
    rows = []
    try:
        for r in range(args.rounds):
            for name, config, twice in ways:
                broker = bb.starling(args, tmp, f"connect-{name}-{r}", config)
                try:
                    prefix = f"auth-{name}-{r}"
                    if twice:
                        connect_run(args, broker.port, prefix, broker.proc.pid)
                        time.sleep(5)  # the first run's connections are gone
                    rate, _ = connect_run(args, broker.port, prefix, broker.proc.pid)
                    rows.append((name, rate))
                finally:
                    broker.stop()
    finally:
        service.stop()
    print(f"\nconnect: {args.connections} connections, 256 in flight, user name and password, "
          f"{args.rounds} rounds")
    print(f"{'check':<16}{'connects/s':>18}{'ratio':>14}")
    base = [rate for name, rate in rows if name == "password-file"]
    for name, _, _ in ways:
        rates = [rate for n, rate in rows if n == name]
        ratios = [a / b for a, b in zip(rates, base)]
        print(f"{name:<16}{min(rates):>8.0f}-{max(rates):<9.0f}{min(ratios):>6.2f}-{max(ratios):<6.2f}")


def publish(args, tmp):
    service = auth_service(tmp)
    hook = (f'[[webhooks]]\nname = "delivered"\nurl = "http://127.0.0.1:{service.port}/hook"\n'
            f'events = ["message.delivered"]\nbatch_max = 1000\nqueue_max = 1000000\n')
    rows = []
    # A webhook whose topics match none of the bench's: the hot path's check alone.
    elsewhere = hook.replace('name = "delivered"', 'name = "elsewhere"') + 'topics = ["none/#"]\n'
    ways = [("webhooks off", ""), ("message.delivered", hook), ("other topics only", elsewhere)]
    try:
        for name, config in [w for _ in range(args.rounds) for w in ways]:
            broker = bb.starling(args, tmp, f"publish-{name.replace(' ', '-')}", config)
            try:
                cpu0 = bb.cpu_seconds(broker.proc.pid)
                cmd = [args.bench, "pairs", "--port", str(broker.port), "--pairs", "10", "--qos",
                       "0", "--payload", "64", "--duration", "10", "--warmup", "2", "--drain", "2",
                       "--json", "--quiet"]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise RuntimeError(f"{cmd}: {out.returncode}\n{out.stderr[-2000:]}")
                report = json.loads(out.stdout)
                cpu = bb.cpu_seconds(broker.proc.pid) - cpu0
                hooks = ""
                if config:
                    import urllib.request
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{broker.http_port}/metrics", timeout=5) as r:
                        text = r.read().decode()
                    hooks = "; ".join(l for l in text.splitlines()
                                      if l.startswith("starling_webhook_events_total"))
                rows.append((name, report["received_per_s"], report["lost"], cpu, hooks))
            finally:
                broker.stop()
    finally:
        service.stop()
    print(f"\npublish: starling-bench pairs, 10 pairs, QoS 0, 64 B, 10 s, {args.rounds} rounds "
          "(ways alternating)")
    print(f"{'webhooks':<20}{'msg/s':>22}{'ratio':>12}{'lost':>8}{'broker CPU s':>16}")
    base = [r[1] for r in rows if r[0] == "webhooks off"]
    for name, _ in ways:
        mine = [r for r in rows if r[0] == name]
        rates = [r[1] for r in mine]
        ratios = [a / b for a, b in zip(rates, base)]
        print(f"{name:<20}{min(rates):>10.0f}-{max(rates):<11.0f}"
              f"{min(ratios):>5.2f}-{max(ratios):<6.2f}{sum(r[2] for r in mine):>8}"
              f"{'/'.join(f'{r[3]:.1f}' for r in mine):>16}")
        for r in mine:
            if r[4]:
                print(f"  {r[4]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--parts", default="connect,publish")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    args.starling = os.path.join(args.build, "starling")
    args.bench = os.path.join(args.build, "starling-bench")
    with tempfile.TemporaryDirectory(prefix="starling-auth-bench-") as tmp:
        for part in args.parts.split(","):
            {"connect": connect, "publish": publish}[part](args, tmp)


if __name__ == "__main__":
    main()
