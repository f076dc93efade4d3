#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The real-peer suite: vdoninjasrc and vdoninjasink against the real VDO.Ninja web app
# (headless Chromium), Raspberry Ninja's publish.py and the self-hosted handshake server, from
# the workspace's ../shared/realpeers (third-party test peers, never part of this project).
#
#   scripts/realpeers.sh [TEST_NAME...]     (default: every test of tests/realpeers.rs)
#
# Needs root (apt, a network namespace). Each test runs as a process of its own inside the
# harness's namespace, where every peer and server lives on 127.0.0.1 / 198.18.0.1. Where the
# harness is absent (a user's checkout), it says so and exits 0. Last line: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

REALPEERS="${VDONINJA_REALPEERS:-$PWD/../shared/realpeers}"
if [ ! -x "$REALPEERS/setup.sh" ]; then
  echo "real-peer suite skipped: no ../shared/realpeers next to this checkout"
  exit 0
fi
REALPEERS="$(cd "$REALPEERS" && pwd)"
export VDONINJA_REALPEERS="$REALPEERS"

"$REALPEERS/setup.sh" >/dev/null
command -v turnserver >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends coturn >/dev/null
}

# Build outside the namespace (it has no network), then run the test binary inside it.
bin=$(cargo test --locked --test realpeers --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\/deps\/realpeers-[^"]*\)".*/\1/p' | tail -n1)
[ -x "$bin" ] || { echo "the real-peer test binary did not build" >&2; exit 1; }

if [ "$#" -gt 0 ]; then
  tests=("$@")
else
  mapfile -t tests < <("$bin" --ignored --list 2>/dev/null | sed -n 's/: test$//p')
fi

logs="${REALPEERS_LOGS:-$(mktemp -d)}"
passed=0 failed=0 failures=()
for t in "${tests[@]}"; do
  start=$(date +%s)
  # Bounded: a case that hangs is killed (its peers end with their own time limits).
  if "$REALPEERS/netns.sh" exec timeout -k 10 240 "$bin" --ignored --exact "$t" --nocapture \
      >"$logs/$t.log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS $t ($(( $(date +%s) - start )) s)"
    grep -E "^(/|the web app|decoded|stats:|publish.py recorded|aligned audio)" "$logs/$t.log" | cut -c1-300 | sed 's/^/    /' || true
  else
    failed=$((failed + 1))
    failures+=("$t")
    echo "FAIL $t ($(( $(date +%s) - start )) s), log: $logs/$t.log"
    tail -n 60 "$logs/$t.log" | sed 's/^/    /'
  fi
done
echo "real peers: ${#tests[@]} tests, logs in $logs"
((failed == 0)) || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
