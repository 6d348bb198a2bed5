#!/usr/bin/env bash
# Builds test/fixtures/package-dlopen.c as a real musl program for this machine's CPU, able to
# dlopen() the musl prebuild ADDON: linked dynamically against musl's libc by the Zig that
# scripts/prebuilds.sh uses, exporting a stub of each Node-API function ADDON imports (its
# undefined napi_* and node_api_* symbols, as readelf lists them). Running it needs musl's
# loader, /lib/ld-musl-<cpu>.so.1: installed here from Debian's `musl` package when missing and
# this runs as root with apt-get.
#   bash scripts/musl-host.sh OUT ADDON      exit 3: no musl loader, and none could be installed
set -euo pipefail
scripts=$(cd "$(dirname "$0")" && pwd)
out=$1 addon=$2
cpu=$(uname -m)
loader=/lib/ld-musl-$cpu.so.1

if [ ! -e "$loader" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl; } >&2 \
      || { echo "apt-get install musl failed" >&2; exit 3; }
  fi
  [ -e "$loader" ] || { echo "no musl loader at $loader (apt-get install musl, as root)" >&2; exit 3; }
fi

zig=$(bash "$scripts/prebuilds.sh" --zig)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
readelf --dyn-syms -W "$addon" | awk '$7 == "UND" && $8 ~ /^(napi_|node_api_)/ { print $8 }' | sort -u \
  | sed 's/.*/void &(void) { abort(); }/' >"$work/imports.c"
[ -s "$work/imports.c" ] || { echo "$addon imports no Node-API function: not an addon" >&2; exit 1; }
sed -i '1i #include <stdlib.h>' "$work/imports.c"
"$zig" build-exe -target "$cpu-linux-musl" -dynamic -rdynamic -lc -O ReleaseSafe \
  "$scripts/../test/fixtures/package-dlopen.c" "$work/imports.c" -femit-bin="$out" --cache-dir "$work/cache"
