#!/usr/bin/env bash
# The seed 002 scenario: wrk POSTs small JSON messages to /api/v1/publish over keep-alive
# connections (2 threads, 64 connections), against a Starling started here with 2 workers:
#   none        no subscriber (every answer is 202, reason 16)
#   subscriber  one MQTT subscriber at QoS 0 (mosquitto_sub), every answer 200
#   durable     QoS 1 retained, durability batch: each answer waits for the store's sync
# Prints wrk's figures, broker CPU per request and, for "subscriber", the messages delivered.
# Usage: bench/http/run.sh [STARLING_BINARY] [SCENARIO...]   (DURATION=10s, CONNECTIONS=64)
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:-build/http-release/starling}
shift || true
scenarios=("${@:-none subscriber durable}")
read -r -a scenarios <<<"${scenarios[*]}"
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

tmp=$(mktemp -d /tmp/starling-http-bench.XXXXXX)
broker_pid=""
sub_pid=""
cleanup() {
  [[ -n "$sub_pid" ]] && kill "$sub_pid" 2>/dev/null || true
  [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (up to 15 minutes) until the machine has been at least 90% idle for 3 seconds in a
# row: other benchmarks on this machine would skew the figures (and ours theirs).
wait_idle() {
  local quiet=0
  for _ in $(seq 900); do
    read -r _ a b c idle1 _ < /proc/stat
    sleep 1
    read -r _ d e f idle2 _ < /proc/stat
    local busy=$(((d + e + f) - (a + b + c))) idle=$((idle2 - idle1))
    if ((idle * 10 >= (busy + idle) * 9)); then
      quiet=$((quiet + 1))
      ((quiet >= 3)) && return
    else
      quiet=0
    fi
  done
  echo "warning: the machine did not become idle; figures may be low"
}

# user + nice + system + irq + softirq ticks of the whole machine (process times include the
# network softirq work done in their context).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() {
  curl -s "http://127.0.0.1:$http_port/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

mqtt_port=$(free_port)
http_port=$(free_port)
"$bin" --bind "127.0.0.1:$mqtt_port" --http "127.0.0.1:$http_port" --threads 2 \
  --log-level warn --data "$tmp/data" >"$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done

hz=$(getconf CLK_TCK)
for scenario in "${scenarios[@]}"; do
  topic="bench/$scenario"
  qos=0
  retain=false
  case "$scenario" in
    none) ;;
    subscriber)
      mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t "$topic" -q 0 >/dev/null &
      sub_pid=$!
      sleep 0.5
      ;;
    durable) qos=1 retain=true ;;
    *) echo "unknown scenario $scenario"; exit 1 ;;
  esac
  wait_idle
  sent_before=$(metric starling_messages_sent_total)
  cpu_before=$(cpu_ticks "$broker_pid")
  sub_before=0
  [[ -n "$sub_pid" ]] && sub_before=$(cpu_ticks "$sub_pid")
  machine_before=$(machine_ticks)
  echo "== $scenario: wrk -t2 -c$connections -d$duration --latency (TOPIC=$topic QOS=$qos RETAIN=$retain)"
  # The subshell's `times` gives wrk's own CPU time (its second line: children user, system).
  out=$(TOPIC=$topic QOS=$qos RETAIN=$retain bash -c 'wrk "$@"; times' wrk -t2 \
    -c"$connections" -d"$duration" --latency -s bench/http/publish.lua \
    "http://127.0.0.1:$http_port")
  machine_after=$(machine_ticks)
  cpu_after=$(cpu_ticks "$broker_pid")
  sub_after=0
  [[ -n "$sub_pid" ]] && sub_after=$(cpu_ticks "$sub_pid")
  sent_after=$(metric starling_messages_sent_total)
  echo "$out" | head -n -2
  wrk_seconds=$(echo "$out" | tail -1 | awk '{gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4}')
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v t=$((cpu_after - cpu_before)) -v hz="$hz" -v n="$requests" -v w="$wrk_seconds" \
    -v m=$((machine_after - machine_before)) -v s=$((sub_after - sub_before)) 'BEGIN {
      printf "broker CPU: %.1f s (%.2f us/request); wrk CPU: %.1f s; subscriber CPU: %.1f s\n",
             t / hz, t / hz * 1e6 / n, w, s / hz
      other = m / hz - t / hz - w - s / hz
      printf "other load (user+system of other processes): %.2f s%s\n", other,
             (other > 1 ? "  NOISY" : "")
    }'
  echo "messages delivered to MQTT subscribers: $((sent_after - sent_before))"
  if [[ -n "$sub_pid" ]]; then kill "$sub_pid"; wait "$sub_pid" 2>/dev/null || true; sub_pid=""; fi
done
