# SPDX-License-Identifier: MPL-2.0
# Sourced by the benchmarks that use ../shared/realpeers (realpeers-startup.sh, rn-compare.sh):
# sets R (the harness, absolute) and PEERS_DIR, runs the harness's idempotent setup, and exits 0
# with a line saying so where the harness is absent. Needs root.
R="${VDONINJA_REALPEERS:-$PWD/../shared/realpeers}"
[ -x "$R/setup.sh" ] || { echo "$(basename "$0"): no ../shared/realpeers next to this checkout"; exit 0; }
R="$(cd "$R" && pwd)"
"$R/setup.sh" >/dev/null
PEERS_DIR="${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vdoninja-realpeers}"
