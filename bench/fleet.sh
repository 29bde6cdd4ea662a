#!/usr/bin/env bash
# The VIP job on a fleet of N real OpenSSH "servers" on this machine, run by ordo and by
# the tools ops use today, side by side: ansible-core (best configuration), Debian's pssh
# (parallel-scp + parallel-ssh + parallel-slurp), and a plain `xargs -P` ssh/scp script.
#
# Usage: bench/fleet.sh [N=50] [RUNS=3]      (run as root; loopback only; stops by itself)
#
# The fleet: N loopback addresses 127.0.<10+i/250>.<1+i%250>, port 2222, served by
# ceil(N/16) sshd processes (OpenSSH allows 16 listen sockets each), with MaxStartups and
# MaxSessions raised as an operator would for a fleet. Every tool logs in as the plain user
# `ordobench` (root's .bashrc on this machine costs ~250 ms per command) with one ed25519 key,
# and checks host keys against one known_hosts file.
#
# The workload (seed 001): push a small script, run it as another user (`ordorunner`, via
# sudo) with an argument, collect the file it writes (/tmp/fichier_<address>_log.txt; the
# servers share this machine's /tmp, so each file is named after its server), tar.gz the
# collected files (ordo also mails the archive to its outbox and records the run).
#
# Reported: wall time (median of RUNS), CPU time of the tool's whole process tree
# (user+sys, median), peak RSS of its largest process (GNU time), and the machine's busy
# CPU time over the run (every process and the kernel, from /proc/stat); first, the floor:
# the servers' CPU for a bare session (login + `true`) times N over the cores.
set -euo pipefail
N=${1:-50}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=/var/tmp/ordo-fleet-$N
PORT=2222
RESULTS=$ROOT/bench/results-fleet-$N.txt

log() { printf '%s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------
command -v parallel-ssh >/dev/null && command -v perf >/dev/null && command -v bc >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pssh openssh-server sudo time linux-perf bc >/dev/null
python3 -c 'import ansible' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check ansible-core
cargo build --release -q -p ordo-cli --manifest-path "$ROOT/Cargo.toml"
CONTROLLER=${CONTROLLER:-$ROOT/target/release/controller}  # CONTROLLER=path: compare another build

# --- users -------------------------------------------------------------------------------
for u in ordobench ordorunner; do
  id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$u"
  usermod -p '*' "$u"
done
echo 'ordobench ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ordo-bench && chmod 440 /etc/sudoers.d/ordo-bench
ulimit -n "$(ulimit -Hn)"

# --- fleet -------------------------------------------------------------------------------
rm -rf "$W" && mkdir -p "$W" && chmod 755 "$W"
cd "$W"
ssh-keygen -q -t ed25519 -N '' -f host_key
ssh-keygen -q -t ed25519 -N '' -f client_key
cp client_key.pub authorized_keys && chmod 644 authorized_keys
addr() { echo "127.0.$((10 + $1 / 250)).$((1 + $1 % 250))"; }
: > hosts
for i in $(seq 0 $((N - 1))); do addr "$i" >> hosts; done
HOSTKEY=$(cut -d' ' -f1,2 host_key.pub)
awk -v p=$PORT -v k="$HOSTKEY" '{printf "[%s]:%d %s\n", $1, p, k}' hosts > known_hosts
mkdir -p /run/sshd
SSHD_PIDS=()
split -l 16 -d -a 3 hosts group.
for g in group.*; do
  {
    echo "Port $PORT"
    sed 's/^/ListenAddress /' "$g"
    echo "HostKey $W/host_key"
    echo "PidFile none"
    echo "UsePAM no"
    echo "StrictModes no"
    echo "AuthorizedKeysFile $W/authorized_keys"
    echo "PasswordAuthentication no"
    echo "Subsystem sftp internal-sftp"
    echo "MaxStartups 1000:30:2000"
    echo "MaxSessions 100"
    echo "LogLevel ERROR"
  } > "$g.conf"
  /usr/sbin/sshd -D -e -f "$W/$g.conf" 2>>sshd.log &
  SSHD_PIDS+=($!)
done
# The servers share this machine's /tmp: leave nothing of the workload behind.
cleanup() {
  kill "${SSHD_PIDS[@]}" 2>/dev/null || true
  rm -f /tmp/fichier_127.0.*_log.txt /tmp/fourni_127.0.*.sh /tmp/fourni.sh /tmp/fichier_pssh_127.0.*.txt
}
trap cleanup EXIT
for a in $(cat hosts); do
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/$a/$PORT") 2>/dev/null && break; sleep 0.02; done
done
log "fleet: $N servers on ${#SSHD_PIDS[@]} sshd processes"

# The machine's busy time (all cores, every process and the kernel), in ticks.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# --- the script every tool pushes --------------------------------------------------------
cat > fichier_fourni.sh <<'EOF'
#!/bin/sh
# $1: environment, $2: this server's name (its address)
{
  echo "environment: $1"
  echo "server: $2"
  echo "user: $(id -un)"
} > "/tmp/fichier_$2_log.txt"
echo "done on $2"
EOF
chmod 755 fichier_fourni.sh
SSH_OPTS="-i $W/client_key -o UserKnownHostsFile=$W/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o KexAlgorithms=curve25519-sha256 -o ConnectTimeout=30 -p $PORT"

# --- ordo --------------------------------------------------------------------------------
mkdir -p ordo/jobs
cat > ordo/ordo.yaml <<EOF
ssh: { user: ordobench, identity: [$W/client_key], known_hosts: $W/known_hosts, connect_timeout: 30s }
EOF
{ echo "servers:"; awk -v p=$PORT '{printf "  s%d: { host: %s, port: %d }\n", NR, $1, p}' hosts; } > ordo/inventory.yaml
cat > ordo/jobs/vip.yaml <<EOF
targets: all
parallelism: ${PAR:-$N}
run_as: ordorunner
steps:
  - script_file: $W/fichier_fourni.sh
    args: [SOC_PRODUCTION, "\${node.host}"]
collect: ["/tmp/fichier_\${node.host}_log.txt"]
mail: { to: [ops@example.com] }
EOF
run_ordo() {
  "$CONTROLLER" -C "$W/ordo" run vip --no-progress > "$W/ordo.out"
}
check_ordo() {
  local d
  d=$(ls -td "$W"/ordo/data/executions/*/ | head -1)
  [ "$(find "$d" -name 'fichier_*_log.txt' | wc -l)" = "$N" ] && grep -q "user: ordorunner" "$(find "$d" -name 'fichier_*_log.txt' | head -1)"
}

# --- xargs -P ssh/scp --------------------------------------------------------------------
cat > xargs_one.sh <<EOF
#!/bin/sh
a=\$1
scp -q $(echo "$SSH_OPTS" | sed 's/-p /-P /') $W/fichier_fourni.sh ordobench@\$a:/tmp/fourni_\$a.sh &&
ssh $SSH_OPTS ordobench@\$a "chmod 755 /tmp/fourni_\$a.sh && sudo -n -u ordorunner /tmp/fourni_\$a.sh SOC_PRODUCTION \$a" >/dev/null &&
mkdir -p $W/xargs.out/\$a && scp -q $(echo "$SSH_OPTS" | sed 's/-p /-P /') ordobench@\$a:/tmp/fichier_\${a}_log.txt $W/xargs.out/\$a/
EOF
chmod 755 xargs_one.sh
run_xargs() {
  rm -rf xargs.out && mkdir xargs.out
  xargs -P "$N" -n 1 "$W/xargs_one.sh" < hosts
  tar -czf xargs.tar.gz xargs.out
}
check_xargs() { [ "$(find xargs.out -name 'fichier_*' | wc -l)" = "$N" ]; }

# --- pssh --------------------------------------------------------------------------------
sed 's/$/:'"$PORT"'/' hosts > pssh_hosts
PSSH_X="-x -i -x $W/client_key -x -oUserKnownHostsFile=$W/known_hosts -x -oStrictHostKeyChecking=yes -x -oKexAlgorithms=curve25519-sha256"
# -p: PSSH_P (default 32, pssh's own and the best value found here: at N=200, -p 8/16/32/100/200
# took 34/42/34/51/51 s; pssh's own event loop costs more with more sessions at once);
# -t 600: a generous per-host timeout (pssh's 60 s default kills sessions that are only
# slow because a thousand of them share two cores).
PSSH_P=${PSSH_P:-$(( N < 32 ? N : 32 ))}
run_pssh() {
  rm -rf pssh.out
  # shellcheck disable=SC2086
  parallel-scp -h pssh_hosts -l ordobench -p "$PSSH_P" -t 600 $PSSH_X fichier_fourni.sh /tmp/fourni.sh >/dev/null
  # shellcheck disable=SC2086,SC2016
  parallel-ssh -h pssh_hosts -l ordobench -p "$PSSH_P" -t 600 $PSSH_X \
    'a=$(echo $SSH_CONNECTION | cut -d" " -f3); chmod 755 /tmp/fourni.sh && sudo -n -u ordorunner /tmp/fourni.sh SOC_PRODUCTION $a && cp /tmp/fichier_${a}_log.txt /tmp/fichier_pssh_${a}.txt' >/dev/null
  # shellcheck disable=SC2086
  parallel-slurp -h pssh_hosts -l ordobench -p "$PSSH_P" -t 600 -L pssh.out $PSSH_X '/tmp/fichier_pssh_*.txt' fichier_log.txt >/dev/null
  tar -czf pssh.tar.gz pssh.out
}
check_pssh() { [ "$(find pssh.out -name 'fichier_log.txt*' | wc -l)" = "$N" ]; }

# --- ansible (pipelining, ControlPersist, forks = min(N, 200), curve25519) ----------------
# More than 200 forks only adds Python processes on 2 cores (and risks the memory).
FORKS=$(( N < 200 ? N : 200 ))
awk -v p=$PORT '{printf "s%d ansible_host=%s ansible_port=%d\n", NR, $1, p}' hosts > ansible_hosts
cat > ansible.cfg <<EOF
[defaults]
inventory = $W/ansible_hosts
remote_user = ordobench
private_key_file = $W/client_key
forks = $FORKS
host_key_checking = True
gathering = explicit
interpreter_python = /usr/bin/python3
stdout_callback = default
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=$W/known_hosts -o KexAlgorithms=curve25519-sha256
control_path_dir = $W/cp
EOF
cat > vip.yml <<EOF
- hosts: all
  tasks:
    - copy: { src: $W/fichier_fourni.sh, dest: "/tmp/fourni_{{ ansible_host }}.sh", mode: "0755" }
    - shell: "/tmp/fourni_{{ ansible_host }}.sh SOC_PRODUCTION {{ ansible_host }}"
      become: true
      become_user: ordorunner
    - fetch: { src: "/tmp/fichier_{{ ansible_host }}_log.txt", dest: "$W/ansible.out/" }
- hosts: localhost
  connection: local
  tasks:
    - command: tar -czf $W/ansible.tar.gz -C $W ansible.out
EOF
run_ansible() {
  rm -rf ansible.out
  ANSIBLE_CONFIG=$W/ansible.cfg ansible-playbook vip.yml > ansible.log 2>&1
}
check_ansible() { [ "$(find ansible.out -name 'fichier_*' | wc -l)" = "$N" ]; }

# --- measure -----------------------------------------------------------------------------
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# Results are appended (the file keeps every run's lines), under a header saying what ran.
printf '# %s %s: bench/fleet.sh %s %s TOOLS="%s" PAR=%s PSSH_P=%s\n' "$(date -u +%FT%TZ)" \
  "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$RUNS" \
  "${TOOLS:-ordo xargs pssh ansible}" "${PAR:-$N}" "$PSSH_P" >> "$RESULTS"
[ "$CONTROLLER" = "$ROOT/target/release/controller" ] || echo "#   CONTROLLER=$CONTROLLER" >> "$RESULTS"
[ -z "${PERF:-}" ] || echo "#   PERF=1 (perf samples the machine during the runs)" >> "$RESULTS"
# The floor: the servers' CPU for one session that logs in and runs `true` (sessions 50
# at a time, so the machine is not the limit), times N, over the cores: no tool that opens
# one SSH session per server can finish sooner on this machine. Measured by sampling every
# CPU (perf, cpu-clock) and summing sshd's and its session's (`sh`, `true`) samples: the
# sshd processes' own accounting (cutime) misses about half of it.
# shellcheck disable=SC2086
perf record -q -a -e cpu-clock -F 999 -o "$W/floor.perf" -- \
  xargs -P 50 -I{} ssh $SSH_OPTS ordobench@{} true < hosts 2>/dev/null
server=$(perf script -i "$W/floor.perf" -F comm,period 2>/dev/null |
  awk '$1 == "sshd" || $1 == "sh" || $1 == "true" {s += $NF} END {printf "%.3f", s / 1e9}')
per=$(echo "scale=5; $server / $N" | bc)
printf 'floor N=%s sshd_cpu_per_session=%s floor_wall=%s cores=%s\n' "$N" "$per" \
  "$(echo "scale=2; $per * $N / $(nproc)" | bc)" "$(nproc)" | tee -a "$RESULTS"
for tool in ${TOOLS:-ordo xargs pssh ansible}; do
  walls=(); cpus=(); rsss=(); busys=()
  for r in $(seq "$RUNS"); do
    # PERF=1: system-wide CPU samples over the run (perf report -i bench/perf-TOOL-N.data --sort comm).
    [ -n "${PERF:-}" ] && { perf record -q -a -g -e cpu-clock -F 499 -o "$ROOT/bench/perf-$tool-$N.data" 2>/dev/null & PERF_PID=$!; sleep 1; }
    busy0=$(busy_ticks)
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S %M' -o "$W/time.$tool" bash -c "$(declare -f run_$tool); cd $W; W=$W N=$N PSSH_P=$PSSH_P PSSH_X='$PSSH_X' CONTROLLER=$CONTROLLER run_$tool"
    end=$(date +%s.%N)
    busy1=$(busy_ticks)
    [ -n "${PERF:-}" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" || true; }
    "check_$tool" || { log "$tool: run $r did not collect $N files"; exit 1; }
    read -r u s m < "$W/time.$tool"
    busy=$(echo "scale=2; ($busy1 - $busy0) / $(getconf CLK_TCK)" | bc)
    walls+=("$(echo "$end - $start" | bc)"); cpus+=("$(echo "$u + $s" | bc)"); rsss+=("$m"); busys+=("$busy")
    log "$tool run $r: wall $(echo "$end - $start" | bc) s, cpu $(echo "$u + $s" | bc) s, rss $((m / 1024)) MiB, machine busy $busy core-s"
  done
  printf '%s N=%s wall=%s cpu=%s rss_mib=%s machine_cpu=%s\n' "$tool" "$N" \
    "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" \
    "$(( $(printf '%s\n' "${rsss[@]}" | sort -n | tail -1) / 1024 ))" "$(printf '%s\n' "${busys[@]}" | median)" | tee -a "$RESULTS"
done
log "results in $RESULTS"
