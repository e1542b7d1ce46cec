#!/usr/bin/env bash
# Installs what is missing, builds Release and starts the broker with its built-in defaults
# (MQTT on 127.0.0.1:1883). Extra arguments go to starling, e.g. ./scripts/run.sh --config my.toml
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh build
./scripts/build-release.sh starling
exec ./build/release/starling "$@"
