#!/usr/bin/env bash
# Installs what is missing, builds with ASan+UBSan and runs every test (unit, integration,
# a bounded fuzz run of the codec). Extra arguments go to ctest, e.g. -R integration.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh test

# MQTT.js and playwright-core for the WebSocket tests (tests/integration/node), only when
# node_modules is missing or older than package-lock.json. playwright-core never downloads a
# browser (the tests use Debian's /usr/bin/chromium).
node_dir=tests/integration/node
if [[ ! -d $node_dir/node_modules || $node_dir/package-lock.json -nt $node_dir/node_modules ]]; then
  (cd "$node_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  touch "$node_dir/node_modules"
fi

jobs=$(nproc)

# The fuzzers need clang's libFuzzer; they build only the self-contained parsing libraries.
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTARLING_FUZZ=ON >/dev/null
cmake --build build/fuzz -j"$jobs"

cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTARLING_SANITIZE=ON \
  -DSTARLING_FUZZ_DIR="$PWD/build/fuzz/fuzz" >/dev/null
cmake --build build/test -j"$jobs"

cd build/test
ctest --output-on-failure -j"$jobs" "$@"
