#!/usr/bin/env bash
# Configures and builds the Release configuration users run: run.sh builds the broker with it,
# test.sh builds every target with it and smoke-runs the broker, so a Release-only compile
# error or crash fails the suite. One place for the directory, type and flags.
# Usage: build-release.sh [TARGET ...]   (no target: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSTARLING_TESTS=OFF >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build/release "${targets[@]}" -j"$(nproc)"
