#!/usr/bin/env bash
# The whole benchmark for one fleet size: the VIP job over SSH with ordo, Ansible, pssh and
# xargs (bench/fleet.sh, with the sshd floor), then over N agents (bench/agents.sh).
# Installs the peers it needs; loopback only; stops by itself.
# Usage: bench/run.sh [N=50] [RUNS=3]       (TOOLS="ordo" to skip the peers)
set -euo pipefail
N=${1:-50}
RUNS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
# The results files keep every run: show this one's lines (after the last header).
last_block() { awk '/^#/ {b = ""} {b = b $0 "\n"} END {printf "%s", b}' "$1"; }
"$HERE/fleet.sh" "$N" "$RUNS"
"$HERE/agents.sh" "$N" "$RUNS"
echo "--- SSH fleet ($HERE/results-fleet-$N.txt)"
last_block "$HERE/results-fleet-$N.txt"
echo "--- agents ($HERE/results-agents-$N.txt)"
last_block "$HERE/results-agents-$N.txt"
