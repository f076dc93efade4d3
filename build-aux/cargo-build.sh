#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# Called by meson: builds with cargo and copies the artifacts where meson expects them.
# Usage: cargo-build.sh SOURCE_DIR BUILD_DIR PROFILE OUTPUT...
set -eu
src="$1"; build="$2"; profile="$3"; shift 3
target="${CARGO_TARGET_DIR:-$build/cargo-target}"
if [ "$profile" = release ]; then flag=--release; dir=release; else flag=; dir=debug; fi
cargo build --locked $flag --manifest-path "$src/Cargo.toml" --target-dir "$target" --lib --bins
for out in "$@"; do
  cp "$target/$dir/$(basename "$out")" "$out"
done
