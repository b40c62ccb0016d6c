#!/usr/bin/env bash
# The README's test command, and what CI runs: the whole test suite on a fresh machine, in
# under 10 minutes on 2 idle cores. Prints `phase NAME: Ns` as each phase ends.
#
# - apt: what the end-to-end tests need (supervisord, stunnel, socat, openssl, promtool,
#   Chromium; etcd for the fleet tests, which start their own cluster on free ports; zsh, fish
#   and groff for the completions and the man page), installed when missing, in the background
#   while the code is checked and built;
# - tools: cargo-deny (and cargo-fuzz) as pinned prebuilt binaries (scripts/tools.sh), nothing
#   compiled;
# - fmt, clippy, deny (the dependency tree against deny.toml), build (the tests, once, in the
#   test profile), unit (the unit tests of both crates, the kernel's protocol simulator among
#   them, and the layer rules), suite (the integration tests, the fuzz targets' seeds and
#   saved crashes among them). Every cargo command names the whole workspace: the root crate
#   and the kernel's (crates/kernel).
#
# `--full` adds the long parts: the Debian package test (cargo-deb, built from source when
# missing: no usable prebuilt one; with lintian and man-db), each fuzz target under libFuzzer
# (scripts/fuzz.sh, FUZZ_SECONDS each, default 60), the tests marked #[ignore] (the fleet
# benchmark) and the fleet's chaos schedule (scripts/fleet-chaos.sh, FLEET_CHAOS_SECS, default
# 300). Without cargo-deb the package test says SKIPPED.
#
# Works with CARGO_TARGET_DIR set; never stops or changes a supervisord it did not start. The
# checkout is left as it was found: a run that changes a tracked or unignored file fails.
set -euo pipefail
cd "$(dirname "$0")/.."

full=false
for arg in "$@"; do
  case "$arg" in
    --full) full=true ;;
    *)
      echo "test.sh: unknown argument '$arg' (the only option is --full)" >&2
      exit 2
      ;;
  esac
done

began=$SECONDS
# phase NAME COMMAND...: runs COMMAND, then says how long it took, failed or not.
phase() {
  local name="$1" t=$SECONDS rc=0
  shift
  "$@" || rc=$?
  echo "phase $name: $((SECONDS - t))s"
  return $rc
}

before="$(git status --porcelain 2>/dev/null || true)"

need=()
command -v supervisord >/dev/null || need+=(supervisor)
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || need+=(stunnel4)
command -v socat >/dev/null || need+=(socat)
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
if $full; then
  command -v lintian >/dev/null || need+=(lintian)
  command -v man >/dev/null || need+=(man-db)
fi
command -v etcd >/dev/null || need+=(etcd-server)
# The completion scripts are loaded by the shells they are for; the man page is rendered.
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
command -v groff >/dev/null || need+=(groff-base)
apt_pid=""
apt_log="$(mktemp)"
trap 'rm -f "$apt_log"' EXIT
if [ ${#need[@]} -gt 0 ]; then
  echo "installing in the background: ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  (
    t=$SECONDS
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
    echo "phase apt: $((SECONDS - t))s"
  ) </dev/null >"$apt_log" 2>&1 &
  apt_pid=$!
fi
# A supervisord already running on the machine (the Debian package starts one) is left alone:
# every test runs its own supervisord with its own config, socket and temp dir.

tools_bin=""
install_tools() { tools_bin="$(./scripts/tools.sh)"; }
phase tools install_tools
export PATH="$tools_bin:$PATH"
if $full && ! command -v cargo-deb >/dev/null; then
  phase cargo-deb cargo install --locked --quiet cargo-deb
fi

phase fmt cargo fmt --all -- --check
phase clippy cargo clippy --workspace --all-targets --quiet -- -D warnings
# Advisories are left out: their database is fetched from GitHub, which these machines cannot
# reach.
phase deny cargo deny --workspace --log-level error check bans licenses sources
# fuzz/Cargo.lock follows Cargo.lock: building the fuzz targets must not rewrite it.
fuzz_lock() { cargo metadata --locked --quiet --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; }
phase fuzz-lock fuzz_lock
# One build for every test below. The bench is left out: without `--bench` it measures nothing
# (clippy has checked it; `cargo bench` runs it).
phase build cargo test --workspace --lib --bins --tests --no-run --quiet

if [ -n "$apt_pid" ]; then
  t=$SECONDS
  if ! wait "$apt_pid"; then
    tail -40 "$apt_log"
    echo "apt-get install ${need[*]} failed"
    exit 1
  fi
  grep '^phase apt:' "$apt_log"
  echo "phase apt-wait: $((SECONDS - t))s"
fi

phase unit cargo test --workspace --lib --bins --test layers
# Scenarios wait on conditions, not clocks: most of their time is spent waiting on the daemon
# and its peers, so they run several at a time on 2 cores (each has its own ports, dirs and
# supervisord). TEST_THREADS sets how many.
phase suite cargo test --test suite -- --test-threads="${TEST_THREADS:-4}"

if $full; then
  phase fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-60}" ./scripts/fuzz.sh
  phase ignored cargo test --test suite -- --ignored --skip fleet_chaos::
  phase fleet-chaos ./scripts/fleet-chaos.sh --seconds "${FLEET_CHAOS_SECS:-300}"
fi

after="$(git status --porcelain 2>/dev/null || true)"
if [ "$after" != "$before" ]; then
  echo "the tests changed the checkout (git status --porcelain):"
  echo "$after"
  exit 1
fi
echo "phase total: $((SECONDS - began))s"
