#!/usr/bin/env bash
# Chaos on the real thing: a real three-member etcd and five handlers on 127.0.0.1 under a
# seeded random schedule of faults (etcd members and the etcd leader killed or stopped,
# handlers killed or stopped, slot holders among them, a wipe of the store, the local tunnel
# refusing on k hosts, outages, `switch --fleet`, `pause --fleet`) for the time asked; then the
# recorded history (every host's restarts and env writes, the store's writes) is checked for
# the fleet's invariants. Needs etcd (Debian's etcd-server); never touches a system etcd.
#
#   scripts/fleet-chaos.sh [--seconds N] [--seed S]
#
# Prints the seed, the schedule as it runs, a summary (faults, moves, restarts, the most
# restarts at once, violations, convergence) and each violation with its moment. The whole
# output, the history and every handler's log among it on a violation, is kept in
# target/fleet-chaos-SEED.log. Exits 1 on a violation, 2 on a bad argument.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds | --seed)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || [ "${#2}" -gt 18 ]; then
        echo "fleet-chaos.sh: $1 needs a whole number, got '${2:-}'" >&2
        exit 2
      fi
      if [ "$1" = --seconds ]; then seconds="$2"; else seed="$2"; fi
      shift 2
      ;;
    *)
      echo "fleet-chaos.sh: unknown argument '$1' (the options are --seconds N and --seed S)" >&2
      exit 2
      ;;
  esac
done
[ -n "$seed" ] || seed=$(( $(date +%s%N) % 1000000007 ))

log="target/fleet-chaos-$seed.log"
mkdir -p target
echo "fleet chaos: seed $seed, $seconds s (full output: $log)"
rc=0
FLEET_CHAOS_SEED="$seed" FLEET_CHAOS_SECS="$seconds" cargo test --quiet --test suite \
  fleet_chaos::long_schedule_from_the_environment -- --ignored --nocapture >"$log" 2>&1 || rc=$?
grep -E '^(chaos |test result|error)' "$log" || true
if [ "$rc" -ne 0 ]; then
  echo "fleet chaos: FAILED (seed $seed; rerun: scripts/fleet-chaos.sh --seed $seed --seconds $seconds; details in $log)"
  exit 1
fi
