#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# vdoninjasink over a narrow link: our sink publishing 640x360 snow (30 fps) to our vdoninjasrc
# inside a network namespace whose UDP is policed by nftables (a token bucket, as a home uplink
# or a mobile link drops what goes over its rate): free for 10 s, 1,000 kbit/s for 20 s,
# 500 kbit/s for 20 s, free for 20 s. Prints, each second, the encoder's target, the viewer's
# link estimate, the bitrate it received, the pictures it decoded and the time they froze,
# then a summary of the last 10 s of each limit. Needs root (ip netns, nft). ~90 s.
#
#   scripts/congestion-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --release --test congestion congestion_bench -- --ignored --exact --nocapture 2>&1 \
  | grep -E "^(limit|under)|packets counted" || true
