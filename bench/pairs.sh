#!/usr/bin/env bash
# QoS 0 throughput of N publisher/subscriber pairs, Starling against Mosquitto, side by side.
#
#   bench/pairs.sh [--build-dir DIR] [--duration S] [--rounds N] [--pairs N] [--qos Q]
#                  [--check] [--keep DIR] [-- extra starling-bench options]
#
# Starts Starling (DIR/starling; DIR defaults to build/release, else build/dev) and Mosquitto
# on free loopback ports, runs `starling-bench pairs` against them in turns (A B A B ...), each
# broker sampled with --broker-pid, then stops both by pid and prints a markdown table and the
# Starling/Mosquitto ratio of received msg/s. Both brokers stay up across rounds, so growth of
# max RSS from one round to the next is visible.
#
# --check adds a correctness run per broker: QoS 1 at 1000 msg/s per publisher for 5 s must
# lose and duplicate nothing (the script exits 1 otherwise).
#
# Mosquitto runs with its defaults apart from the listener (note: set_tcp_nodelay defaults to
# false there, while Starling always sets TCP_NODELAY). The machine should be otherwise idle:
# the bench and the broker share its cores.
set -euo pipefail

cd "$(dirname "$0")/.."

build_dir=""
duration=10
rounds=2
pairs=10
qos=0
check=0
keep=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    --qos) qos="$2"; shift 2 ;;
    --check) check=1; shift ;;
    --keep) keep="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "pairs.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if [[ -z "$build_dir" ]]; then
  if [[ -x build/release/starling ]]; then build_dir=build/release; else build_dir=build/dev; fi
fi
starling_bin="$build_dir/starling"
bench_bin="$build_dir/starling-bench"
[[ -x "$bench_bin" ]] || bench_bin=build/dev/starling-bench
for bin in "$starling_bin" "$bench_bin"; do
  [[ -x "$bin" ]] || { echo "pairs.sh: $bin not built" >&2; exit 1; }
done
command -v mosquitto >/dev/null || { echo "pairs.sh: mosquitto not installed" >&2; exit 1; }

work=$(mktemp -d /tmp/starling-pairs.XXXXXX)
starling_pid=""
mosquitto_pid=""

stop_broker() {  # pid name: stop one broker we started, by its pid
  local pid="$1" name="$2"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local status=0
    wait "$pid" 2>/dev/null || status=$?
    if [[ $status -ne 0 && $status -ne 143 ]]; then
      echo "pairs.sh: $name (pid $pid) exited with status $status on SIGTERM" >&2
    fi
  else
    local status=0
    wait "$pid" 2>/dev/null || status=$?
    echo "pairs.sh: $name (pid $pid) had already exited (status $status)" >&2
  fi
}

cleanup() {
  stop_broker "$starling_pid" starling
  stop_broker "$mosquitto_pid" mosquitto
  starling_pid=""
  mosquitto_pid=""
  if [[ -n "$keep" ]]; then
    mkdir -p "$keep" && cp "$work"/* "$keep"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() {  # port pid name
  local port="$1" pid="$2" name="$3"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "pairs.sh: $name exited at startup; its log:" >&2
      cat "$work/$name.log" >&2
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "pairs.sh: $name is not listening on port $port after 5 s" >&2
  exit 1
}

starling_port=$(free_port)
"$starling_bin" --bind "127.0.0.1:$starling_port" --http off --threads 2 --log-level warn \
  --data "$work/data" \
  >"$work/starling.log" 2>&1 &
starling_pid=$!
wait_listening "$starling_port" "$starling_pid" starling

mosquitto_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mosquitto_port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mosquitto_pid=$!
wait_listening "$mosquitto_port" "$mosquitto_pid" mosquitto

echo "starling  $("$starling_bin" --version 2>/dev/null | head -1) ($starling_bin) pid $starling_pid port $starling_port" >&2
echo "mosquitto $(mosquitto -h 2>/dev/null | head -1 | sed 's/mosquitto version //') pid $mosquitto_pid port $mosquitto_port" >&2
echo "bench     $bench_bin: pairs --pairs $pairs --qos $qos --duration $duration ${extra[*]}" >&2

run_bench() {  # name port pid out_json [args...]
  local name="$1" port="$2" pid="$3" out="$4"
  shift 4
  local status=0
  "$bench_bin" pairs --port "$port" --broker-pid "$pid" --json --quiet "$@" >"$out" || status=$?
  if [[ $status -ne 0 ]]; then
    echo "pairs.sh: starling-bench against $name failed (status $status):" >&2
    python3 -c 'import json,sys; print("  " + json.load(open(sys.argv[1]))["error"])' "$out" >&2 ||
      cat "$out" >&2
  fi
  return 0
}

for round in $(seq 1 "$rounds"); do
  for name in starling mosquitto; do
    if [[ $name == starling ]]; then port=$starling_port pid=$starling_pid; else port=$mosquitto_port pid=$mosquitto_pid; fi
    echo "round $round: $name" >&2
    run_bench "$name" "$port" "$pid" "$work/$name-$round.json" \
      --pairs "$pairs" --qos "$qos" --duration "$duration" "${extra[@]}"
  done
done

check_failed=0
if [[ $check -eq 1 ]]; then
  for name in starling mosquitto; do
    if [[ $name == starling ]]; then port=$starling_port pid=$starling_pid; else port=$mosquitto_port pid=$mosquitto_pid; fi
    echo "check: $name, QoS 1 at 1000 msg/s per publisher" >&2
    run_bench "$name" "$port" "$pid" "$work/$name-check.json" \
      --pairs "$pairs" --qos 1 --rate 1000 --duration 5
  done
fi

python3 - "$work" "$rounds" "$check" <<'EOF' || check_failed=1
import json, os, sys

work, rounds, check = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"

def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def cell(r, key, fmt="{:.0f}"):
    return fmt.format(r[key]) if r and r.get("ok") else "-"

# "other load": cores busy with neither the bench nor the broker during the window (a busy
# machine makes rounds incomparable).
print("| broker | round | sent msg/s | received msg/s | lost | p50 us | p99 us | broker CPU | broker max RSS | other load |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
received = {"starling": [], "mosquitto": []}
for rnd in range(1, rounds + 1):
    for name in ("starling", "mosquitto"):
        r = load(f"{name}-{rnd}.json")
        if r is None or not r.get("ok"):
            err = (r or {}).get("error", "no result")
            print(f"| {name} | {rnd} | FAILED: {err} | | | | | | | |")
            continue
        received[name].append(r["received_per_s"])
        b = r.get("broker_process", {})
        print(f"| {name} | {rnd} | {r['sent_per_s']:.0f} | {r['received_per_s']:.0f} | {r['lost']} "
              f"| {r['latency_us']['p50']:.0f} | {r['latency_us']['p99']:.0f} "
              f"| {b.get('cpu_avg_percent', 0):.0f}% | {b.get('rss_max_kb', 0) / 1024:.1f} MiB "
              f"| {r.get('other_cores', 0):.2f} cores |")

mean = lambda xs: sum(xs) / len(xs) if xs else 0
s, m = mean(received["starling"]), mean(received["mosquitto"])
print()
if s and m:
    print(f"Starling/Mosquitto received msg/s: {s:.0f} / {m:.0f} = {s / m:.2f}x")
else:
    print("Starling/Mosquitto received msg/s: n/a (a run failed)")

ok = True
if check:
    print()
    print("| check (QoS 1, 1000 msg/s per publisher, 5 s) | received | lost | duplicates | out of order | result |")
    print("|---|---:|---:|---:|---:|---|")
    for name in ("starling", "mosquitto"):
        r = load(f"{name}-check.json")
        good = bool(r and r.get("ok") and r["lost"] == 0 and r["duplicates"] == 0)
        ok = ok and good
        if r is None:
            print(f"| {name} | - | - | - | - | FAILED: no result |")
        else:
            verdict = "ok" if good else "FAILED " + r.get("error", "")
            print(f"| {name} | {r['received']} | {r['lost']} | {r['duplicates']} | {r['out_of_order']} | {verdict} |")
sys.exit(0 if ok else 1)
EOF

if [[ -s "$work/starling.log" ]]; then
  echo "starling log (warnings and errors):" >&2
  tail -n 20 "$work/starling.log" >&2
fi
exit $check_failed
