#!/usr/bin/env bash
# Builds the Debian package (debian/, Debian's own dpkg-buildpackage and debhelper) into
# dist/: dist/starling_<version>_<arch>.deb. Installs the build dependencies that are missing.
# The build directory (build/package) is kept, so an unchanged tree repackages in seconds.
# package.sh --path: prints where the package goes (dist/...deb) and builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^project(starling VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_path() { echo "dist/starling_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb"; }
if [[ ${1:-} == --path ]]; then
  deb_path
  exit 0
fi

./scripts/deps.sh package

changelog=$(dpkg-parsechangelog -S Version)
if [[ $version != "$changelog" ]]; then
  echo "package.sh: debian/changelog is at $changelog but CMakeLists.txt at $version:" \
    "add a changelog entry (dch -v $version)" >&2
  exit 1
fi

# debhelper's stamp would skip the build on a second run (and package stale binaries): it
# goes, with the previous staging tree; build/package stays, so make rebuilds only what changed.
rm -rf debian/debhelper-build-stamp debian/starling debian/.debhelper
# -b: binary only (the source is this tree); -nc: no clean first, build/package is reused.
DEB_BUILD_OPTIONS="noddebs parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -b -nc -us -uc
# dpkg-buildpackage writes next to the source tree.
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
mkdir -p dist
for f in "starling_${version}_${arch}.deb" "starling_${version}_${arch}.buildinfo" \
  "starling_${version}_${arch}.changes"; do
  mv -f "../$f" dist/
done
echo "package.sh: $(deb_path)"
