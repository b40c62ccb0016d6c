#!/usr/bin/env bash
# Fleet mode's figures: etcd writes per host per hour in steady state (target: 0 beyond lease
# keep-alives) and the time five hosts take to move together; then a fleet at rest: reads,
# writes and lease renewals per host per hour (target: 0 reads, 0 writes), and each handler's
# CPU and RSS beside handlers without a fleet. Needs etcd (Debian's etcd-server); starts its
# own three-member clusters on 127.0.0.1, never the system's. FLEET_BENCH_SECONDS sets each
# window (default 30 for the first, 60 for the second).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test suite fleet::bench_steady_state_writes_and_convergence -- \
  --ignored --nocapture 2>&1 | grep -E '^(steady state|convergence|test result)'
cargo test --release --test suite fleet_rest::bench_a_fleet_at_rest -- \
  --ignored --nocapture 2>&1 | grep -E '^(at rest|test result)'
