#!/usr/bin/env bash
# Runs the jest suite against the addon built with -fsanitize=address,undefined (cmake-js),
# with the ASan runtime preloaded into node and every child process, then fails on any
# ASan or UBSan report, and on any leak whose allocation was made by the addon's own code.
#   bash scripts/sanitize.sh [jest options...]
set -uo pipefail
cd "$(dirname "$0")/.."

npx cmake-js compile --out build-asan --CDMMAN_SANITIZE=ON >/tmp/mman-asan-build.log 2>&1 \
  || { tail -30 /tmp/mman-asan-build.log; exit 1; }

reports=$(mktemp -d)
chmod 1777 "$reports"  # tests also run children as an unprivileged user
asan=$(g++ -print-file-name=libasan.so)
# handle_segv/sigbus=0: tests make children die of SIGSEGV and SIGBUS on purpose, and the
# truncation guard installs its own SIGBUS handler. exitcode=0: leaks are judged below.
# symbolize=0: the leak check runs as each process exits, and jest kills a worker that has
# not exited 500 ms after it was told to; symbolizing Node's own exit-time leaks took
# ~240 ms of that (70 ms without), and a killed worker's report is lost. Stacks are logged
# as module+offset, and the report below symbolizes the addon's frames with addr2line.
MMAN_ADDON="$PWD/build-asan/Release/mman.node" \
LD_PRELOAD="$asan" \
ASAN_OPTIONS="log_path=$reports/asan:symbolize=0:handle_segv=0:handle_sigbus=0:detect_leaks=1:detect_odr_violation=0:verify_asan_link_order=0:allow_user_segv_handler=1" \
LSAN_OPTIONS="exitcode=0" \
UBSAN_OPTIONS="log_path=$reports/ubsan:symbolize=0:print_stacktrace=1:halt_on_error=0" \
  node --expose-gc node_modules/jest/bin/jest.js "$@"
status=$?

node scripts/sanitizer-report.js "$reports" || status=1
rm -rf "$reports"
exit $status
