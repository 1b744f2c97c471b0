#!/usr/bin/env bash
# The load test of issue 6: builds examples/service.rs twice in release mode, with the `enable`
# feature off and on, and runs the driver (src/main.rs) against both. Settings: LOAD_* variables,
# see src/main.rs; LOAD_QUICK=1 for one short round. It takes no arguments.
#
#   CARGO_TARGET_DIR=/work/target-load benches/load/run.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
manifest="$here/Cargo.toml"
bins="$CARGO_TARGET_DIR/load-bins"
mkdir -p "$bins"

# One build at a time; each leaves `service` in release/, copied before the next overwrites it.
cargo build --release --manifest-path "$manifest" --bin service --bin load
cp "$CARGO_TARGET_DIR/release/service" "$bins/service-off"
cp "$CARGO_TARGET_DIR/release/load" "$bins/load"
cargo build --release --manifest-path "$manifest" --bin service --features enable
cp "$CARGO_TARGET_DIR/release/service" "$bins/service-on"

exec "$bins/load" "$bins/service-off" "$bins/service-on"
