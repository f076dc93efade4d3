#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Every benchmark, one after the other (~13 min on 2 cores, after a release build): recording
# cost (1 and 8 participants), the publisher's fan-out (1/3/10 viewers, first frame), the
# receiver's start-up, the room mix (4 guests), and the handshake server under load
# (scripts/server-bench.sh). Prints
# their figures; BENCHMARKS.md says what they mean and what was measured before.
#
#   scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

cargo build --release --locked --lib --examples --bin vdoninja-server
echo "== recording: 1 and 8 participants"
target/release/examples/record_bench 1 8
echo "== vdoninjasink: first frame, CPU with 1, 3, 10 and 30 viewers"
target/release/examples/sink_bench --ten --thirty
echo "== vdoninjasrc: PLAYING to first buffer"
target/release/examples/src_bench
echo "== vdoninjasrc mix=true: 4 guests into 1280x720@30"
target/release/examples/mix_bench --guests 4
echo "== vdoninja-server under load"
scripts/server-bench.sh 10
echo "benchmarks finished in $(( $(date +%s) - start )) s"
