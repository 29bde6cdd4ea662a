#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the end-to-end tests need (when
# missing), then runs `cargo test --workspace`. Extra arguments go to cargo test.
# Needs root: the tests start sshd in private mount namespaces and create two test users.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run it as root (the tests start sshd and create test users)" >&2
  exit 2
fi

need_install=0
for bin in /usr/sbin/sshd sudo openssl nsenter unshare pgrep ssh-keygen curl runuser ss chromium chromedriver; do
  command -v "$bin" >/dev/null 2>&1 || need_install=1
done
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need_install=1
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_install=1
pkg-config --exists openssl 2>/dev/null || need_install=1
/usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || need_install=1
if [ "$need_install" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # sshd and ssh-keygen: the test fleet; aiosmtpd: the SMTP server; openssl: its TLS
  # certificate; util-linux (unshare, nsenter, runuser) and procps (pgrep): process
  # checks; postgresql: the server the store and failover tests start in a temp folder
  # (not the distribution's cluster); curl: the HTTP API tests; iproute2 (ss): connection
  # checks; chromium and chromium-driver: the web console tests drive a real browser;
  # libssl-dev and pkgconf: the controller's CMS encryption (OpenSSL); python3-cryptography:
  # an expired certificate for the key tests.
  apt-get install -y -qq openssh-server openssh-client sudo python3-aiosmtpd openssl \
    util-linux procps postgresql curl iproute2 chromium chromium-driver \
    libssl-dev pkgconf python3-cryptography >/dev/null
fi

# A stock gRPC client (grpcio with server reflection) for the agent tests, and Ansible's
# own inventory reader to compare ours with. A Debian-managed python3 (PEP 668) needs
# --break-system-packages; one without pip gets python3-pip first.
pip_install() {
  python3 -m pip --version >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
  }
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
python3 -c 'import grpc, grpc_reflection' >/dev/null 2>&1 \
  || pip_install grpcio grpcio-reflection protobuf
command -v ansible-inventory >/dev/null 2>&1 \
  || pip_install ansible-core

exec cargo test --workspace "$@"
