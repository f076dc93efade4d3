#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The handshake server under load (examples/server_load.rs): ours at 1,000 / 3,000 / 10,000
# clients (TLS, fan-out, rooms of 4, one 200-byte message a second each), the official model,
# TLS off, and the Node fan-out server of ../shared/realpeers at 1,000 / 3,000 for the
# side-by-side figure. Prints one line per run; ~6 min.
#
#   scripts/server-bench.sh [SECONDS_OF_LOAD]     (default 20)
#
# With ../shared/realpeers (needs root) everything runs in its network namespace; without it,
# ours alone runs on this machine's loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"

cargo build --release --locked --bin vdoninja-server --example server_load
load=target/release/examples/server_load
# 10,000 clients need 10,000 descriptors here and as many in the server.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 10240 ] || echo "note: ulimit -n is $(ulimit -n); the 10,000-client run needs more"

REALPEERS="${VDONINJA_REALPEERS:-$PWD/../shared/realpeers}"
run=()
node=false
if [ -x "$REALPEERS/netns.sh" ] && [ "$(id -u)" = 0 ]; then
  "$REALPEERS/setup.sh" >/dev/null
  export VDONINJA_REALPEERS="$(cd "$REALPEERS" && pwd)"
  run=("$REALPEERS/netns.sh" exec)
  node=true
fi

bench() { timeout 600 "${run[@]}" "$load" --duration "$secs" "$@" | grep '^server='; }

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
for n in 1000 3000; do
  bench --clients "$n" --tls
  if $node; then bench --server node --clients "$n"; fi
done
bench --clients 10000 --tls
bench --clients 3000 --tls --model official
bench --clients 3000
