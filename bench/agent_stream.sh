#!/usr/bin/env bash
# Streams SIZE bytes of output (default 1 GiB, in 100-byte lines) from a job on a real
# agent over mutual TLS, and reports the peak RSS of the controller and of the agent.
# Loopback only; stops by itself. Usage: bench/agent_stream.sh [SIZE_BYTES]
set -euo pipefail
SIZE=${1:-1073741824}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q -p ordo-cli -p ordo-agent --manifest-path "$ROOT/Cargo.toml"
C=$ROOT/target/release/controller
A=$ROOT/target/release/agent
W=$(mktemp -d /var/tmp/ordo-bench-stream.XXXXXX)
trap 'kill $AGENT_PID 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/p/jobs" "$W/a"
"$C" -C "$W/p" pki init >/dev/null
"$A" enroll --name bench1 --dir "$W/a" >/dev/null
"$C" -C "$W/p" pki sign "$W/a/agent.csr" --out "$W/a/agent.pem" --yes >/dev/null
cp "$W/p/data/pki/ca.pem" "$W/a/"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'name: bench1\nlisten: 127.0.0.1:%s\ntls: { ca: ca.pem, cert: agent.pem, key: agent.key }\n' "$PORT" > "$W/a/agent.yaml"
/usr/bin/time -f '%M' -o "$W/agent.rss" "$A" run -c "$W/a/agent.yaml" 2>"$W/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.05; done
printf 'servers:\n  bench1: { host: 127.0.0.1, port: %s, transport: agent }\n' "$PORT" > "$W/p/inventory.yaml"
LINES=$((SIZE / 100))
cat > "$W/p/jobs/stream.yaml" <<JOB
targets: all
steps:
  - command: yes 'ordo-benchmark-line-ordo-benchmark-line-ordo-benchmark-line-ordo-benchmark-line-ordo-benchmark-' | head -n $LINES
JOB
START=$(date +%s.%N)
${PROFILE:-} /usr/bin/time -f '%M %e %U %S' -o "$W/controller.rss" "$C" -C "$W/p" run stream --no-progress --no-mail >/dev/null
END=$(date +%s.%N)
pkill -INT -P $AGENT_PID; wait $AGENT_PID 2>/dev/null || true  # GNU time ignores SIGINT: signal the agent itself
read -r CRSS CWALL CUSER CSYS < "$W/controller.rss"
ARSS=$(tail -1 "$W/agent.rss")
DB=$(du -m "$W/p/data/ordo.db"* | awk '{s+=$1} END {print s}')
echo "output: $((SIZE / 1048576)) MiB in $LINES lines"
echo "controller: peak RSS $((CRSS / 1024)) MiB, wall ${CWALL}s, cpu user ${CUSER}s sys ${CSYS}s"
echo "agent:      peak RSS $((ARSS / 1024)) MiB"
echo "history database: ${DB} MiB"
