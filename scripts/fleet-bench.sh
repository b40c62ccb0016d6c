#!/usr/bin/env bash
# Fleet mode's figures: etcd writes per host per hour in steady state (target: 0 beyond lease
# keep-alives) and the time five hosts take to move together. Needs etcd (Debian's
# etcd-server); starts its own three-member cluster on 127.0.0.1, never the system's.
# FLEET_BENCH_SECONDS sets the steady-state window (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test suite fleet::bench_steady_state_writes_and_convergence -- \
  --ignored --nocapture 2>&1 | grep -E '^(steady state|convergence|test result)'
