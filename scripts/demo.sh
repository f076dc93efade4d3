#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The local demo: installs what is needed, builds, starts our handshake server on loopback and
# runs the main job against it. No internet needed beyond package installation.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --locked --bins --examples
port=$(( 20000 + RANDOM % 20000 ))
./target/debug/vdoninja-server --listen "127.0.0.1:$port" --quiet &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
./target/debug/examples/signaling_demo "ws://127.0.0.1:$port"
