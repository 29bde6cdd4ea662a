#!/bin/sh
# The supplied script (Fichier_fourni.sh): writes this server's result file in /tmp.
# $1 is the environment (SOC_PRODUCTION); ordo also exports ORDO_NODE_NAME and friends.
set -eu
out="/tmp/fichier_$(hostname)_log.txt"
{
  echo "environment: $1"
  echo "server: ${ORDO_NODE_NAME:-$(hostname)}"
  echo "user: $(id -un)"
  echo "date: $(date '+%Y-%m-%d %H:%M:%S')"
  echo "dollar universe: $(command -v uxstr 2>/dev/null || echo 'not installed')"
} > "$out"
echo "wrote $out"
