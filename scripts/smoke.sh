#!/usr/bin/env bash
# Smoke-runs a built broker the way a user first meets it: built-in defaults (no config file),
# only the ports moved to free loopback ones and the data directory to a scratch one. Carries a
# message from mosquitto_pub to mosquitto_sub, reads /healthz, then stops it with SIGTERM and
# expects exit code 0. Usage: smoke.sh [BINARY]   (default build/release/starling)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-build/release/starling}
scratch=$(mktemp -d -t starling-smoke.XXXXXX)
broker_pid=""
sub_pid=""
finish() {
  [[ -n $sub_pid ]] && kill "$sub_pid" 2>/dev/null || true
  [[ -n $broker_pid ]] && kill -KILL "$broker_pid" 2>/dev/null || true
  rm -rf "$scratch"
}
trap finish EXIT
fail() {
  echo "smoke: FAILED: $*" >&2
  echo "smoke: broker output:" >&2
  cat "$scratch/broker.log" >&2 || true
  exit 1
}

read -r mqtt_port http_port < <(/usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

"$binary" --bind "127.0.0.1:$mqtt_port" --http "127.0.0.1:$http_port" --data "$scratch/data" \
  >"$scratch/broker.log" 2>&1 &
broker_pid=$!

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$http_port/healthz" >"$scratch/healthz" 2>/dev/null && break
  kill -0 "$broker_pid" 2>/dev/null || fail "the broker exited at start"
  sleep 0.1
done
grep -q . "$scratch/healthz" || fail "/healthz did not answer within 10 s"

# The subscriber takes one message; the publisher repeats until it arrived, since nothing says
# when the subscription is in place.
mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -V mqttv5 -t smoke/test -q 1 -C 1 -W 20 \
  >"$scratch/received" 2>"$scratch/sub.err" &
sub_pid=$!
for _ in $(seq 100); do
  kill -0 "$sub_pid" 2>/dev/null || break
  mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -V mqttv311 -t smoke/test -q 1 -m "hello starling" \
    || fail "mosquitto_pub could not publish"
  sleep 0.2
done
wait "$sub_pid" || fail "mosquitto_sub received nothing: $(cat "$scratch/sub.err")"
sub_pid=""
[[ $(cat "$scratch/received") == "hello starling" ]] ||
  fail "mosquitto_sub received '$(cat "$scratch/received")', not 'hello starling'"

kill -TERM "$broker_pid"
code=0
wait "$broker_pid" || code=$?
broker_pid=""
[[ $code -eq 0 ]] || fail "exit code $code after SIGTERM, not 0"
echo "smoke: $binary carried a message, answered /healthz ($(cat "$scratch/healthz")) and exited cleanly"
