#!/usr/bin/env bash
# Runs each cargo-fuzz target briefly: FUZZ_SECONDS each (default 20). Long runs: see
# docs/faults.md. cargo-fuzz needs nightly features; on the stable toolchain
# RUSTC_BOOTSTRAP=1 unlocks them (the sanitizer runtime ships with stable too).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-20}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(failover_list env_file config_file xmlrpc_response)

command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz
export RUSTC_BOOTSTRAP=1

# Logs go to a temp dir: fuzz/target/ does not exist when CARGO_TARGET_DIR points elsewhere.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
build_log="$logs/build.log"
if ! cargo fuzz build >"$build_log" 2>&1; then
  tail -40 "$build_log"
  echo "fuzz: the targets do not build"
  exit 1
fi
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  log="$logs/$target.log"
  if cargo fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz $target: ${secs}s, $runs inputs, no crash"
  else
    tail -40 "$log"
    echo "fuzz $target: FAILED (crash input under fuzz/artifacts/$target/)"
    exit 1
  fi
done
