#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Every benchmark, one after the other (under 15 min on 2 cores, after a release build):
# recording at scale (1, 8, 16, 32 participants), the publisher's fan-out (1/3/10/30 viewers,
# first frame), the receiver's start-up (our publisher, a guest joining a recorded room, and,
# where ../shared/realpeers is next to the checkout, publish.py's H.264 and VP8), the recording
# cost against Raspberry Ninja on the same room (also ../shared/realpeers), the room mix
# (4 guests), and the handshake server under load (scripts/server-bench.sh). Prints their
# figures; BENCHMARKS.md says what they mean and what was measured before.
#
#   scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

cargo build --release --locked --lib --examples --bin vdoninja-server
built=$(date +%s)
echo "release build: $((built - start)) s"
section() { echo "== [at $(($(date +%s) - built)) s] $*"; }
section "recording: 1, 8, 16 and 32 participants (pre-encoded publishers), 30 s each"
target/release/examples/record_bench --scale 1 8 16 32
section "vdoninjasink: first frame, CPU with 1, 3, 10 and 30 viewers"
target/release/examples/sink_bench --ten --thirty
section "vdoninjasrc: PLAYING to first buffer; a guest joining a recorded room"
target/release/examples/src_bench
target/release/examples/src_bench --join
section "vdoninjasrc: PLAYING to first buffer with publish.py publishing (real peers)"
scripts/realpeers-startup.sh 5
section "recording cost: ours and Raspberry Ninja's --record-room on the same room (real peers)"
SETTLE=15 scripts/rn-compare.sh 2
section "vdoninjasrc mix=true: 4 guests into 1280x720@30"
target/release/examples/mix_bench --guests 4
section "vdoninja-server under load"
scripts/server-bench.sh 10
echo "benchmarks finished in $(( $(date +%s) - built )) s after a $((built - start)) s build"
