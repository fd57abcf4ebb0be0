#!/usr/bin/env bash
# Installs the third-party XMPP software the interop tests drive, from Debian's
# packages, when it is missing. Idempotent; needs root (or sudo) only when
# something must be installed.
set -euo pipefail

need=()
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)
# Prosody, and lua-unbound (only recommended by the package): its resolver
# is the one the federation test can point at its own DNS server.
command -v prosody >/dev/null && command -v prosodyctl >/dev/null || need+=(prosody)
lua5.4 -e 'require "lunbound"' 2>/dev/null || need+=(lua-unbound)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "install-peers: installing ${need[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

if [[ " ${need[*]} " == *" prosody "* ]]; then
  # The package starts a system-wide Prosody on the standard ports (5222,
  # 5269), which other tests use; the interop test runs its own Prosody.
  echo "install-peers: stopping and disabling the prosody service" >&2
  $sudo invoke-rc.d prosody stop >/dev/null 2>&1 || true
  $sudo deb-systemd-helper disable prosody.service >/dev/null 2>&1 || true
  $sudo update-rc.d prosody disable >/dev/null 2>&1 || true
fi
