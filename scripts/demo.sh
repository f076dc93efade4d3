#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The local demo, and the job users come for: record every participant of a VDO.Ninja room.
# It installs what is needed, builds the plugin, starts our handshake server on loopback,
# publishes two test participants into a room with vdoninjasink (different test patterns and
# tones), records the room with vdoninjasrc for a few seconds, stops it with EOS (like Ctrl-C
# on gst-launch-1.0 -e) and prints what was recorded. No internet is needed beyond packages.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${DEMO_SECONDS:-8}
./scripts/setup.sh
cargo build --locked --lib --bins --example recording_report

export GST_PLUGIN_PATH="$PWD/target/debug"
# Each run records into a directory of its own, so the report shows just this run.
out=${DEMO_OUT:-$PWD/demo-recording/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
port=$(( 20000 + RANDOM % 20000 ))
# Loopback only: no STUN/TURN lookups, host candidates on 127.0.0.1.
common="server=ws://127.0.0.1:$port local-address=127.0.0.1 auto-turn=false stun-server=\"\""

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

./target/debug/vdoninja-server --listen "127.0.0.1:$port" --quiet &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

publish() { # stream-id pattern frequency
  gst-launch-1.0 -q videotestsrc is-live=true pattern="$2" \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! vdoninjasink name=s stream-id="$1" room=demo label="$1" $common \
    audiotestsrc is-live=true freq="$3" ! s. >/dev/null &
  pids+=($!)
}
publish alice ball 440
publish bob smpte 660

echo "recording room 'demo' for $seconds s into $out ..."
timeout -s INT "$seconds" gst-launch-1.0 -e vdoninjasrc room=demo \
  record-location="$out/%s-%t.mkv" $common >"$out/recorder.log" 2>&1 || true
cleanup
./target/debug/examples/recording_report "$out"
