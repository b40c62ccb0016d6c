#!/usr/bin/env bash
# Fuzzes each target under libFuzzer: FUZZ_SECONDS each (default 20); targets as arguments.
# Long runs and the scheduled job: see docs/faults.md. `cargo test` already replays the seeds
# and saved crashes (tests/suite/fuzz_corpus.rs); this is for finding new ones, and builds
# the instrumented targets (about 14 minutes on 2 cores the first time). cargo-fuzz is the
# pinned prebuilt binary of scripts/tools.sh. It needs nightly features; on the stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them (the sanitizer runtime ships with stable too).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-20}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(failover_list env_file config_file xmlrpc_response)

PATH="$(./scripts/tools.sh):$PATH"
export RUSTC_BOOTSTRAP=1
# cargo fuzz would rewrite a stale fuzz/Cargo.lock: refuse instead, saying what to do.
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz: fuzz/Cargo.lock is out of date: update it with \`cargo update --workspace --manifest-path fuzz/Cargo.toml\` and commit it"
  exit 1
fi

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
