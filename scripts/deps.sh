#!/usr/bin/env bash
# Installs the Debian packages Starling needs, only those missing. Sourced by run.sh/test.sh.
# Usage: deps.sh [build|package|test]   (test includes package)
set -euo pipefail

build_packages=(cmake g++ make pkg-config libspdlog-dev libfmt-dev libtomlplusplus-dev
  libcli11-dev librocksdb-dev libhttp-parser-dev nlohmann-json3-dev librdkafka-dev libavro-dev
  libcurl4-openssl-dev libssl-dev libwslay-dev libsystemd-dev python3)
# scripts/package.sh: Debian's package tools.
package_packages=(dpkg-dev debhelper fakeroot)
test_packages=(googletest libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev clang-format
  python3 python3-paho-mqtt mosquitto-clients python3-prometheus-client python3-jwt
  python3-cryptography curl kcat
  python3-avro nodejs chromium mosquitto openssl fuse3 libfuse3-dev haproxy)

wanted=("${build_packages[@]}")
if [[ "${1:-build}" == "package" || "${1:-build}" == "test" ]]; then
  wanted+=("${package_packages[@]}")
fi
if [[ "${1:-build}" == "test" ]]; then
  wanted+=("${test_packages[@]}")
  # Debian's npm conflicts with nodesource's nodejs, which bundles npm: only when none is there.
  if ! command -v npm >/dev/null 2>&1; then wanted+=(npm); fi
fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
