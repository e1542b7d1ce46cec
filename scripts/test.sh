#!/usr/bin/env bash
# Installs what is missing, then:
#  1. builds the Release configuration run.sh builds (same directory, type and flags; every
#     target) and smoke-runs that broker with its built-in defaults (scripts/smoke.sh);
#  2. builds the Debian package (scripts/package.sh), which test_package.py installs;
#  3. builds with ASan+UBSan and runs every test (unit, integration, bounded fuzz runs, format).
# Extra arguments go to ctest, e.g. -R integration. Skipped tests are counted at the end; with
# CI set (as in CI, and .ci/run) a skip is a failure, since deps.sh installed every tool.
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

# What users run: a Release-only compile error or crash fails here.
./scripts/build-release.sh
./scripts/smoke.sh build/release/starling

# The package operators install (Debian's flags, in build/package).
./scripts/package.sh
STARLING_DEB=$PWD/$(./scripts/package.sh --path)
export STARLING_DEB

# The fuzzers need clang's libFuzzer; they build only the self-contained parsing libraries.
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTARLING_FUZZ=ON >/dev/null
cmake --build build/fuzz -j"$jobs"

cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTARLING_SANITIZE=ON \
  -DSTARLING_FUZZ_DIR="$PWD/build/fuzz/fuzz" >/dev/null
cmake --build build/test -j"$jobs"

# Every skipped test writes a line here (tests/integration/harness.py, tests/unit/skip_in_ci.h).
export STARLING_SKIP_LOG=$PWD/build/test/skipped.log
: >"$STARLING_SKIP_LOG"
status=0
(cd build/test && ctest --output-on-failure -j"$jobs" "$@") || status=$?

skipped=$(wc -l <"$STARLING_SKIP_LOG")
echo "skipped tests: $skipped"
if ((skipped > 0)); then
  sed 's/^/  skipped: /' "$STARLING_SKIP_LOG"
  if [[ -n ${CI:-} ]]; then echo "(CI is set: each skip failed its test)"; fi
fi
exit "$status"
