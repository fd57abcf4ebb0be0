#!/usr/bin/env bash
# Installs the third-party XMPP software the interop tests drive, from Debian's
# packages, when it is missing. Idempotent; needs root (or sudo) only when
# something must be installed.
set -euo pipefail

need=()
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "install-peers: installing ${need[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
