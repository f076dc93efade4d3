#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Issue 13, item 1: the recording cost of `vdoninjasrc` against Raspberry Ninja's
# `publish.py --record-room`, in one run on the same room: two real web-app guests (headless
# Chromium) publish into one room on the self-hosted server of ../shared/realpeers, and both
# recorders record them at the same time. Each recorder's whole process tree is sampled once a
# second (/proc: user + system time, resident memory) over a window after every guest is
# connected, and over the whole run.
#
#   cargo build --release --lib && scripts/rn-compare.sh [RUNS=3]
#
# Env: SETTLE (s before the window, 20), WINDOW (s, 30). Needs root and ../shared/realpeers
# (the test peers are third-party code, run here, never part of this project).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
settle="${SETTLE:-20}"
window="${WINDOW:-30}"

source scripts/lib/realpeers-bench.sh  # (cwd is the checkout)
plugin="$PWD/target/release"
[ -f "$plugin/libgstvdoninja.so" ] || { echo "build first: cargo build --release --lib" >&2; exit 1; }

port=8493
room=rncompare
pw=benchpw
hz=$(getconf CLK_TCK)

# Every process of the tree under $1, the root first.
tree() {
  local p
  echo "$1"
  for p in $(pgrep -P "$1" 2>/dev/null); do tree "$p"; done
}
# user + system ticks of one process (fields 14 and 15; the name may hold spaces).
ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# sample ROOT_A ROOT_B SECONDS: CPU seconds of each tree over SECONDS (processes born meanwhile
# count from zero, those that end keep their last value) and each tree's peak RSS.
sample() {
  local -A first last
  local -a peak=(0 0)
  local i k p t m r root t0
  t0=$(date +%s%N)
  for ((i = 0; i <= $3; i++)); do
    k=0
    for root in "$1" "$2"; do
      m=0
      for p in $(tree "$root"); do
        t=$(ticks "$p"); [ -n "$t" ] || continue
        if [ -z "${first[$k.$p]:-}" ]; then
          if ((i == 0)); then first[$k.$p]=$t; else first[$k.$p]=0; fi
        fi
        last[$k.$p]=$t
        r=$(rss_kb "$p" || true)
        m=$((m + ${r:-0}))
      done
      ((m > peak[k])) && peak[k]=$m
      k=$((k + 1))
    done
    ((i == $3)) || sleep 1
  done
  local -a cpu=(0 0) total=(0 0)
  for key in "${!last[@]}"; do
    k=${key%%.*}
    cpu[k]=$((cpu[k] + last[$key] - first[$key]))
    total[k]=$((total[k] + last[$key]))
  done
  echo "${cpu[0]} ${cpu[1]} ${peak[0]} ${peak[1]} ${total[0]} ${total[1]} $(($(date +%s%N) - t0))"
}

"$R/server.sh" start "$port" >/dev/null
trap '"$R/server.sh" stop "$port" >/dev/null 2>&1 || true' EXIT
results=()
for ((run = 1; run <= runs; run++)); do
  out=$(mktemp -d)
  mkdir -p "$out/ours" "$out/rn"
  duration=$((settle + 2 * window + 15))
  # Raspberry Ninja first: with no room listing it learns the guests from their joinroom.
  PORT=$port DURATION=$duration LOG="$out/rn.log" \
    "$R/rpi-record-room.sh" "$room" "$out/rn" --password "$pw" >/dev/null 2>&1 &
  rn=$!
  GST_PLUGIN_PATH="$plugin" "$R/netns.sh" exec timeout -s INT -k 15 "$duration" \
    gst-launch-1.0 -e vdoninjasrc server="wss://127.0.0.1:$port" \
    tls-ca-file="$PEERS_DIR/webserver/ca.pem" room="$room" password="$pw" \
    record-location="$out/ours/%s-%t.mkv" >"$out/ours.log" 2>&1 &
  ours=$!
  sleep 3
  guests=()
  for g in guestA guestB; do
    PORT=$port "$R/browser-publish.sh" "push=$g&room=$room&password=$pw" "$duration" \
      >"$out/$g.log" 2>&1 &
    guests+=($!)
  done
  sleep "$settle"
  # w_*: what the trees had used by the window's end, their start-up included; ns: the
  # window's real length (reading /proc takes time too).
  read -r c_ours c_rn m_ours m_rn w_ours w_rn ns < <(sample "$ours" "$rn" "$window")
  # Both recorders run under `timeout`, which passes a SIGINT on: they end cleanly (EOS, files
  # finalized); then the guests (browser-publish.sh is node itself, which ends on SIGTERM).
  for p in $(tree "$ours") $(tree "$rn"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" != timeout ] || kill -INT "$p" 2>/dev/null || true
  done
  wait "$ours" "$rn" 2>/dev/null || true
  kill -TERM "${guests[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  n_ours=$(find "$out/ours" -name '*.mkv' -size +10k | wc -l)
  n_rn=$(find "$out/rn" -name '*.webm' -size +10k | wc -l)
  line=$(awk -v co="$c_ours" -v cr="$c_rn" -v mo="$m_ours" -v mr="$m_rn" -v wo="$w_ours" \
    -v wr="$w_rn" -v hz="$hz" -v w="$(awk -v ns="$ns" 'BEGIN { print ns / 1e9 }')" 'BEGIN {
      printf "ours %.1f %% of one core (%.2f CPU-s), %d MB; Raspberry Ninja %.1f %% (%.2f CPU-s), %d MB; CPU ratio %.2f, memory ratio %.2f; whole run %.2f vs %.2f CPU-s (%.2f)",
        co / hz / w * 100, co / hz, mo / 1024, cr / hz / w * 100, cr / hz, mr / 1024,
        (cr > 0 ? co / cr : 0), (mr > 0 ? mo / mr : 0), wo / hz, wr / hz, (wr > 0 ? wo / wr : 0) }')
  echo "run $run: $line; files: ours $n_ours, Raspberry Ninja $n_rn"
  results+=("$(awk -v co="$c_ours" -v cr="$c_rn" -v mo="$m_ours" -v mr="$m_rn" \
    'BEGIN { printf "%.3f %.3f", (cr > 0 ? co / cr : 0), (mr > 0 ? mo / mr : 0) }')")
  if ((n_ours < 2 || n_rn < 2)); then
    echo "run $run is not valid: each recorder must have recorded both guests (logs in $out)"
  else
    rm -rf "$out"
  fi
done
median() { sort -n | awk '{ v[NR] = $1 } END { printf "median %.2f, %.2f-%.2f", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo "CPU ratio (ours / Raspberry Ninja): $(printf '%s\n' "${results[@]}" | cut -d' ' -f1 | median) (target <= 0.5)"
echo "memory ratio: $(printf '%s\n' "${results[@]}" | cut -d' ' -f2 | median) (target <= 0.33)"
