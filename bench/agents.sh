#!/usr/bin/env bash
# N real agents on this machine (loopback, one port each), each enrolled with the real
# commands (`agent enroll`, `controller pki sign`), and two jobs on all of them: a no-op
# (`true`) and the VIP job (script run as another user with an argument, one result file
# collected per server, tar.gz, mail to the outbox).
#
#   cold:      `controller run` (a new process: every TCP + TLS handshake is in the time)
#   connected: `controller serve` (channels to the agents kept open), jobs started through
#              its API; the time is the execution's own (started_at -> finished_at)
#
# Usage: bench/agents.sh [N=50] [RUNS=3]     (as root; loopback only; stops by itself)
# Reported: wall (median of RUNS), the controller's CPU (user+sys) and peak RSS for the
# cold runs, the agents' resident memory.
set -euo pipefail
N=${1:-50}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=/var/tmp/ordo-agents-$N
BASE=20000
API=127.0.0.1:$((BASE - 1))
RESULTS=$ROOT/bench/results-agents-$N.txt
log() { printf '%s\n' "$*" >&2; }

cargo build --release -q -p ordo-cli -p ordo-agent --manifest-path "$ROOT/Cargo.toml"
C=$ROOT/target/release/controller
A=$ROOT/target/release/agent
id ordorunner >/dev/null 2>&1 || useradd --create-home --shell /bin/sh ordorunner
ulimit -n "$(ulimit -Hn)"

rm -rf "$W" && mkdir -p "$W/p/jobs" "$W/a"
cd "$W"
AGENT_PIDS=()
SERVE_PID=
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  kill "${AGENT_PIDS[@]}" 2>/dev/null || true
  rm -f /tmp/fichier_a*_log.txt
}
trap cleanup EXIT

log "enrolling $N agents"
"$C" -C p pki init >/dev/null
for i in $(seq 0 $((N - 1))); do
  d=a/$i
  mkdir -p "$d"
  "$A" enroll --name "a$i" --dir "$d" >/dev/null
  "$C" -C p pki sign "$d/agent.csr" --out "$d/agent.pem" --yes >/dev/null
  cp p/data/pki/ca.pem "$d/"
  printf 'name: a%d\nlisten: 127.0.0.1:%d\ntls: { ca: ca.pem, cert: agent.pem, key: agent.key }\nallowed_users: ["*", root]\n' \
    "$i" $((BASE + i)) > "$d/agent.yaml"
done
for i in $(seq 0 $((N - 1))); do
  "$A" run -c "a/$i/agent.yaml" 2>>agents.log &
  AGENT_PIDS+=($!)
done
for i in $(seq 0 $((N - 1))); do
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$((BASE + i))") 2>/dev/null && break; sleep 0.02; done
done
agents_rss() {
  local t=0 p
  for p in "${AGENT_PIDS[@]}"; do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo $((t / ${#AGENT_PIDS[@]}))
}
log "$N agents up, $(agents_rss) KiB resident each"

cat > fichier_fourni.sh <<'EOF'
#!/bin/sh
{
  echo "environment: $1"
  echo "server: $2"
  echo "user: $(id -un)"
} > "/tmp/fichier_$2_log.txt"
echo "done on $2"
EOF
{ echo "servers:"; for i in $(seq 0 $((N - 1))); do echo "  a$i: { host: 127.0.0.1, port: $((BASE + i)), transport: agent }"; done; } > p/inventory.yaml
cat > p/jobs/noop.yaml <<EOF
targets: all
parallelism: $N
archive: false
steps: [{ command: "true" }]
EOF
cat > p/jobs/vip.yaml <<EOF
targets: all
parallelism: $N
run_as: ordorunner
steps:
  - script_file: $W/fichier_fourni.sh
    args: [SOC_PRODUCTION, "\${node.name}"]
collect: ["/tmp/fichier_\${node.name}_log.txt"]
mail: { to: [ops@example.com] }
EOF

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
check() {  # job: every server succeeded (and, for vip, N files collected)
  local job=$1 d
  d=$(ls -td p/data/executions/*/ | head -1)
  grep -q "\"status\": \"succeeded\"" "$d/summary.json" || { log "$job: not every server succeeded ($d)"; exit 1; }
  if [ "$job" = vip ]; then
    [ "$(find "$d" -name 'fichier_*_log.txt' | wc -l)" = "$N" ] || { log "vip: not $N files in $d"; exit 1; }
  fi
}

: > "$RESULTS.tmp"
for job in noop vip; do
  : > times
  for r in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %U %S %M' -o t "$C" -C p run "$job" --no-progress >/dev/null
    check "$job"
    cat t >> times
  done
  wall=$(awk '{print $1}' times | median)
  cpu=$(awk '{print $2 + $3}' times | median)
  rss=$(awk '{print $4}' times | median)
  printf 'N=%d job=%s mode=cold wall=%ss cpu=%ss rss=%dMiB runs=%d\n' "$N" "$job" "$wall" "$cpu" $((${rss%.*} / 1024)) "$RUNS" | tee -a "$RESULTS.tmp"
done

# The API needs credentials: an administrator and a token of it.
printf 'bench-password-0rdo\n' | "$C" -C p users add bench --role admin --email bench@example.com --password-stdin >/dev/null
TOKEN=$("$C" -C p tokens create --user bench)
AUTH="Authorization: Bearer $TOKEN"
"$C" -C p serve --listen "http://$API" 2>serve.log &
SERVE_PID=$!
for _ in $(seq 200); do curl -sf "http://$API/api/v1/health" >/dev/null && break; sleep 0.05; done
api_run() {  # job -> execution duration in seconds
  # The harness stays light while the run is on (the cores are shared): the id is cut out
  # with sed, the state polled with curl every 0.1 s, Python only once the run is over.
  local id st
  id=$(curl -sf -X POST -H "$AUTH" -H 'Content-Type: application/json' -d '{}' "http://$API/api/v1/jobs/$1" | sed 's/.*"execution":"\([^"]*\)".*/\1/')
  for _ in $(seq 3000); do
    sleep 0.1
    st=$(curl -sf -H "$AUTH" "http://$API/api/v1/executions/$id")
    case $st in *'"status":"running"'*) ;; *) break ;; esac
  done
  echo "$st" | /usr/bin/python3 -c '
import json, sys
e = json.load(sys.stdin)
assert e["status"] == "succeeded", e
print((e["finished_at"] - e["started_at"]) / 1000)'
}
for job in noop vip; do
  api_run "$job" >/dev/null  # the first run in serve connects
  : > times
  # PERF=1: CPU samples of the whole machine over the connected runs
  # (perf report -i bench/perf-agents-JOB-N.data --sort comm).
  [ -n "${PERF:-}" ] && { perf record -q -a -g -e cpu-clock -F 499 -o "$ROOT/bench/perf-agents-$job-$N.data" 2>/dev/null & PERF_PID=$!; sleep 1; }
  for r in $(seq "$RUNS"); do api_run "$job" >> times; log "$job connected run $r: $(tail -1 times) s"; done
  [ -n "${PERF:-}" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" || true; }
  wall=$(median < times)
  printf 'N=%d job=%s mode=connected wall=%ss runs=%d\n' "$N" "$job" "$wall" "$RUNS" | tee -a "$RESULTS.tmp"
done
printf 'N=%d agents_rss=%dKiB_each\n' "$N" "$(agents_rss)" | tee -a "$RESULTS.tmp"
# Results are appended (the file keeps every run's lines), under a header saying what ran.
{
  printf '# %s %s: bench/agents.sh %s %s\n' "$(date -u +%FT%TZ)" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$RUNS"
  cat "$RESULTS.tmp"
} >> "$RESULTS"
rm -f "$RESULTS.tmp"
