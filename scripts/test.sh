#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the end-to-end tests need
# (supervisord, stunnel, socat, openssl, promtool, Chromium; lintian and man-db for the package
# test; etcd for the fleet tests, which start their own cluster on free ports) when missing, then
# runs every test. Works with CARGO_TARGET_DIR set; never stops or changes a supervisord it did
# not start.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v supervisord >/dev/null || need+=(supervisor)
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || need+=(stunnel4)
command -v socat >/dev/null || need+=(socat)
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
command -v lintian >/dev/null || need+=(lintian)
command -v man >/dev/null || need+=(man-db)
command -v etcd >/dev/null || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# A supervisord already running on the machine (the Debian package starts one) is left alone:
# every test runs its own supervisord with its own config, socket and temp dir.

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# The dependency tree against deny.toml: licences, bans (duplicates), sources. Advisories are
# left out: their database is fetched from GitHub, which these machines cannot reach.
command -v cargo-deny >/dev/null || cargo install --locked --quiet cargo-deny
cargo deny --log-level error check bans licenses sources
# tests/package.rs builds the Debian package with cargo-deb.
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb
# Benches are built and started without `--bench`, which measures nothing (`cargo bench` does).
cargo test --all-targets
# A brief run of each fuzz target (the parsers of the failover list, the env file and the
# config file); long runs: docs/faults.md.
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" ./scripts/fuzz.sh
