#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Issue 13, item 3, with a third-party publisher: `vdoninjasrc stream-id=…` PLAYING → first
# buffer while Raspberry Ninja's `publish.py` (from ../shared/realpeers, run here as a test peer,
# never part of this project) is already publishing, once with H.264 (`--h264`) and once with
# VP8 (`--vp8`), on the self-hosted server, inside the harness's network namespace.
#
#   cargo build --release --lib --examples && scripts/realpeers-startup.sh [RUNS=5]
#
# Needs root and ../shared/realpeers; prints src_bench's lines for each codec.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"

source scripts/lib/realpeers-bench.sh  # (cwd is the checkout)
bench="$PWD/target/release/examples/src_bench"
[ -x "$bench" ] || { echo "build first: cargo build --release --lib --examples" >&2; exit 1; }

port=8494
pw=benchpw
"$R/server.sh" start "$port" >/dev/null
pub=
# publish.py runs under the harness's `timeout`, in a process group of its own: it is stopped
# by name (SIGINT: it ends cleanly).
stop_pub() { pkill -INT -f "publish.py .*--streamid $1( |$)" 2>/dev/null || true; }
cleanup() {
  [ -z "$pub" ] || stop_pub "$pub"
  wait 2>/dev/null || true
  "$R/server.sh" stop "$port" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for codec in h264 vp8; do
  pub="bench${codec}"
  PORT=$port DURATION=300 LOG=/dev/null "$R/rpi-publish.sh" "$pub" --password "$pw" "--$codec" \
    >/dev/null 2>&1 &
  # publish.py takes a few seconds to start (Python, GStreamer) and join.
  sleep 8
  echo "== publish.py --$codec (640x360@30, 1 Mbit/s) already live"
  GST_PLUGIN_PATH="$PWD/target/release" "$R/netns.sh" exec timeout 300 "$bench" \
    --runs "$runs" --server "wss://127.0.0.1:$port" --stream-id "$pub" \
    --props "password=$pw tls-ca-file=$PEERS_DIR/webserver/ca.pem auto-turn=false stun-server=\"\"" \
    2>&1 | grep -v '^ '
  stop_pub "$pub"
  wait 2>/dev/null || true
  pub=
done
